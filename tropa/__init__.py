"""Tropa: retail marketing journeys declared in YAML, run as durable Temporal workflows."""
