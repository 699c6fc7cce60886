"""The sandbox provider server: a real HTTP server that records what would have been sent."""
