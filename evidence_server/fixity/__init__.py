"""Fixity: re-read stored recordings on a schedule and check them against their fingerprints."""
