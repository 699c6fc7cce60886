"""Search attributes on every run, so operations staff can find runs in the Web UI.

No personal data ever goes here: only journey name, version, customer id and step id.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

JOURNEY = SearchAttributeKey.for_keyword("TropaJourney")
CUSTOMER = SearchAttributeKey.for_keyword("TropaCustomer")
STEP = SearchAttributeKey.for_keyword("TropaStep")
VERSION = SearchAttributeKey.for_keyword("TropaVersion")

ALL = (JOURNEY, CUSTOMER, STEP, VERSION)

# The memo holds the trigger's event id (never personal data), so a repeated event is
# recognised by the run it already started.
TRIGGER_MEMO = "trigger_event_id"
