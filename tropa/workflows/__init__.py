"""Temporal workflows. Modules here do no I/O; activities do it for them."""
