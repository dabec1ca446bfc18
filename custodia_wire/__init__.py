"""What the ingest agent, the evidence server and an offline verifier must agree on.

Imports none of the rooms: fingerprints, device paths, manifests, receipts and the tus metadata keys.
"""

TUS_VERSION = "1.0.0"

#: Keys of the tus ``Upload-Metadata`` header that a station sends with each recording.
UPLOAD_METADATA_KEYS = (
    "transfer_id",
    "path",
    "filename",
    "blake3",
    "sha256",
    "mtime",
    "copied_at",
    "started_at",
)
