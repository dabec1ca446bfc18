"""Dock ports: the state of each place a recorder is docked, as the stations report it."""
