"""Retention on the server: states, legal holds, approved changes and disposals (rules in ``retention/``)."""
