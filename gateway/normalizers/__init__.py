"""Normalizers: pure functions from a ``RawMessage`` (and configuration) to a canonical event
payload. No network I/O; the duplicate index is the one piece of state (SQLite, local)."""
