"""The customers domain: identifiers and cards, the view templates see, orders and purchase
totals, import and export, merge, audit. Imports neither temporalio nor fastapi."""

# Importing the audit module registers the listener that records changes to customers.
from tropa.customers import audit as _audit  # noqa: F401
