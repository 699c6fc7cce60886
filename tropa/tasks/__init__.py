"""Staff tasks: stored once per run and step, announced to the assignee, closed by people."""
