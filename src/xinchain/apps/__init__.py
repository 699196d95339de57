"""The applications: one folder each, listed in `registry.py` (docs/architecture.md)."""
