"""Step types: each declared once in the registry, everything else derives from it."""
