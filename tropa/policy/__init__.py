"""The policy gate every send passes: consent, verified contacts, quiet hours, caps."""
