"""Offline checks of the audit log: signed checkpoints, inclusion and consistency proofs. Trusts no server.

The only trust anchor is the server's public key, obtained out of band (printed on the unit's
records, or read from ``GET /api/v1/server-key`` on a day nobody disputes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custodia_wire import auditlog, documents
from custodia_wire.auditlog import Checkpoint, LogError

Echo = Callable[[str], object]


def _describe(cp: Checkpoint) -> str:
    return f"log {cp.origin!r} size {cp.tree_size} root {cp.root_hash.hex()} issued {cp.issued_at or '?'}"


def _note(path: Path | None, embedded: Any, what: str) -> str:
    if path is not None:
        return path.read_text("utf-8")
    if isinstance(embedded, str):
        return embedded
    raise LogError(f"no {what}: pass it as a file")


def run(
    *,
    key: str | None,
    checkpoint: Path | None,
    old_checkpoint: Path | None,
    inclusion: Path | None,
    consistency: Path | None,
    echo: Echo,
) -> bool:
    if not key:
        echo("checking a checkpoint or proof needs --key (the server's public key, base64)")
        return False
    try:
        public_key = documents.load_public_key_b64(key)
        if checkpoint is not None and inclusion is None and consistency is None:
            cp = auditlog.verify_note(checkpoint.read_text("utf-8"), public_key)
            echo(f"OK       checkpoint {checkpoint}: signature valid, {_describe(cp)}")
        if inclusion is not None:
            doc = json.loads(inclusion.read_text("utf-8"))
            cp = auditlog.verify_note(_note(checkpoint, doc.get("checkpoint"), "checkpoint"), public_key)
            auditlog.verify_inclusion_document(doc, cp)
            e = doc["entry"]
            echo(
                f"OK       entry {e['seq']} ({e['action']} at {e['at']} by {e['actor'].get('name')}, "
                f"object {e['object'].get('type')} {e['object'].get('id')}) is in the {_describe(cp)}"
            )
        if consistency is not None:
            doc = json.loads(consistency.read_text("utf-8"))
            old = auditlog.verify_note(
                _note(old_checkpoint, doc.get("first_checkpoint"), "--old-checkpoint"), public_key
            )
            new = auditlog.verify_note(_note(checkpoint, doc.get("second_checkpoint"), "--checkpoint"), public_key)
            auditlog.verify_consistency_document(doc, old, new)
            echo(
                f"OK       the log of size {new.tree_size} extends the log of size {old.tree_size} "
                "unchanged: nothing was rewritten or removed in between"
            )
    except (OSError, ValueError, KeyError, LogError, documents.DocumentError) as exc:
        echo(f"FAILED   {exc}")
        return False
    return True
