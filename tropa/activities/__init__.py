"""Temporal activities: everything that touches the database or a provider."""
