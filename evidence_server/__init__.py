"""The evidence server: the system of record for devices, stations, transfers and recordings."""
