"""Evidence rows bound to the audit log: every evidence-bearing row checked against the entries that recorded it."""
