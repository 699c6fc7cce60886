"""Broadcasts: one message to a whole audience, snapshotted, paged, counted."""
