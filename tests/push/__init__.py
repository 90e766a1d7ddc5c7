"""Real push receivers for the tests (tests/push/receivers.py)."""
