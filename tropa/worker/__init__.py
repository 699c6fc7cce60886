"""The worker process, the `tropa` command line and the embedded dev stack."""
