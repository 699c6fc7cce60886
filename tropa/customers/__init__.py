"""The customers domain: identifiers and cards, the view templates see, orders and purchase
totals, import and export, merge, audit. Imports neither temporalio nor fastapi."""
