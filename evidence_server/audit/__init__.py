"""The audit trail: who did what, when, from where, to which object."""
