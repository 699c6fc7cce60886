"""`tropa simulate`: what a journey will do to one customer over the coming months, by running
the real engine on the time-skipping Temporal server against a throwaway database."""
