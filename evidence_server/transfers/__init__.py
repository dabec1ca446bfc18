"""Transfers (转存): one docking of one device at one station, its index, manifest and receipt."""
