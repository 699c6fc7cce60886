"""The journey language: YAML with positions, validation, compilation to a Plan."""
