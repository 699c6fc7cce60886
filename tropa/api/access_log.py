"""Access logs without query strings: they carry callback and unsubscribe tokens and
personal data (`GET /v1/customers?phone=...`), so only the path is logged."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class QueryStringHidden(logging.Filter):
    """Cuts the query string off the request line of uvicorn's access records."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs (client, method, path with query, http version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def hide_query_strings() -> None:
    """Install the filter on uvicorn's access logger once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, QueryStringHidden) for f in logger.filters):
        logger.addFilter(QueryStringHidden())
