"""Calendar triggers: when dates and inactivity fall due. Imports neither temporalio nor fastapi."""
