"""Push ingest: the content-destination side of the Axis Body Worn integration API (a Swift subset)."""
