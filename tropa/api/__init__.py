"""The HTTP API: events, customers, journeys, runs."""
