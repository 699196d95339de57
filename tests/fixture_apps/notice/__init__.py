"""The notice app: a member org posts a short public notice; each notice has its own receipt.

Added through docs/architecture.md's checklist by tests/integration/test_add_an_app.py, which
copies this folder into a copy of the source tree as `xinchain/apps/notice/` and adds one line
to the registry: nothing else of the chain changes.
"""
