"""RF segments: recency and frequency bands mapped to seven customer groups (seed 002)."""
