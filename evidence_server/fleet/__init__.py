"""The fleet of collection stations: heartbeat history and the rules that say a station needs attention."""
