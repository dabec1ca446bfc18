"""A signed excerpt of the audit log: chosen entries, each with its inclusion proof, under one checkpoint.

An auditor hands a court or an inspector the few entries that matter (who viewed, exported or
changed this recording), not the whole log. Each entry is proved to be in the log by an RFC 9162
inclusion proof against a signed checkpoint, and the excerpt as a whole is signed with the same
server key, so that nothing can be added to it or taken from it unnoticed. Anyone holding the
server's public key checks it offline: ``custodia verify --excerpt FILE --key KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custodia_wire import auditlog, documents
from custodia_wire.auditlog import Checkpoint, LogError

EXCERPT_FORMAT = "custodia.audit-excerpt/1"
MAX_ENTRIES = 10_000


def make_excerpt(
    checkpoint_note: str,
    inclusions: list[dict[str, Any]],
    *,
    exported_at: str,
    exported_by: str,
    purpose: str | None,
    private_key: documents.PrivateKeyLike,
) -> dict[str, Any]:
    """The signed excerpt: ``inclusions`` are inclusion documents against the checkpoint in ``checkpoint_note``."""
    body = {
        "format": EXCERPT_FORMAT,
        "checkpoint": checkpoint_note,
        "exported_at": exported_at,
        "exported_by": exported_by,
        "purpose": purpose,
        "entries": [
            {"entry": doc["entry"], "leaf_index": doc["leaf_index"], "audit_path": doc["audit_path"]}
            for doc in inclusions
        ],
    }
    return documents.sign(body, private_key)


@dataclass(frozen=True)
class CheckedExcerpt:
    checkpoint: Checkpoint
    entries: list[dict[str, Any]]


def verify_excerpt(doc: dict[str, Any], public_key: documents.PublicKeyLike) -> CheckedExcerpt:
    """Check the excerpt's signature, its checkpoint's signature, and every entry's inclusion; LogError if any fails."""
    if not isinstance(doc, dict) or doc.get("format") != EXCERPT_FORMAT:
        raise LogError(f"not a {EXCERPT_FORMAT} document")
    try:
        documents.verify_signature(doc, public_key)
    except documents.DocumentError as exc:
        raise LogError(f"the excerpt's signature does not verify: altered, or signed by another key ({exc})") from exc
    checkpoint = auditlog.verify_note(str(doc.get("checkpoint", "")), public_key)
    items = doc.get("entries")
    if not isinstance(items, list) or not items or len(items) > MAX_ENTRIES:
        raise LogError("an excerpt holds between 1 and 10000 entries")
    seen: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            raise LogError("malformed excerpt entry")
        auditlog.verify_inclusion_document(
            {
                "format": auditlog.INCLUSION_FORMAT,
                "tree_size": checkpoint.tree_size,
                "entry": item.get("entry"),
                "leaf_index": item.get("leaf_index"),
                "audit_path": item.get("audit_path", []),
            },
            checkpoint,
        )
        index = int(item["leaf_index"])
        if index in seen:
            raise LogError(f"entry {index} appears twice")
        seen.add(index)
    return CheckedExcerpt(checkpoint, [item["entry"] for item in items])
