"""Delivery: the send path split into prepare (gate, render, log) and deliver (provider
call on the channel's task queue), plus receipts and the channel workers."""
