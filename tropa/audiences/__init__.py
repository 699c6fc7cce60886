"""Audiences: a filter language over customers, compiled to one SQL query.

`parse_audience` reads a filter (YAML text or a mapping), `audience_select` turns it into a
`SELECT customer_id`, `page_customer_ids` walks it in id order, `resolve` also accepts
`{"saved": "<name>"}`. See docs/audiences.md.
"""

from tropa.audiences.conditions import Audience
from tropa.audiences.parse import parse_audience
from tropa.audiences.saved import resolve
from tropa.audiences.sql import audience_select, count, page_customer_ids

__all__ = ["Audience", "audience_select", "count", "page_customer_ids", "parse_audience",
           "resolve"]
