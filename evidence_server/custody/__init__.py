"""Custody of the stored copy: every read of original bytes is checked as it streams, damage is
recorded at once, and block maps make a byte range checkable alone (see docs/cases.md)."""
