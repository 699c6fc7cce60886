"""The loyalty ledger, coupons and the programme: a domain package, free of Temporal and HTTP."""
