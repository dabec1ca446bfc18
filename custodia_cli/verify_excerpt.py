"""``custodia verify --excerpt FILE --key KEY``: check a signed audit-log excerpt offline.

Checks the excerpt's signature, the checkpoint's signature and each entry's inclusion proof, all
against the one public key given (the server's, obtained out of band). Trusts nothing in the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from custodia_wire import audit_excerpt, documents
from custodia_wire.auditlog import LogError

Echo = Callable[[str], object]


def run(path: Path, key: str | None, echo: Echo) -> bool:
    if not key:
        echo("checking an excerpt needs --key (the server's public key, base64)")
        return False
    try:
        doc = json.loads(path.read_text("utf-8"))
        checked = audit_excerpt.verify_excerpt(doc, documents.load_public_key_b64(key))
    except (OSError, ValueError, KeyError, TypeError, LogError, documents.DocumentError) as exc:
        echo(f"FAILED   {path}: {exc}")
        return False
    cp = checked.checkpoint
    echo(
        f"OK       excerpt {path}: signed by the key given; {len(checked.entries)} entr"
        f"{'y' if len(checked.entries) == 1 else 'ies'} in the log {cp.origin!r} of size {cp.tree_size}, "
        f"exported by {doc.get('exported_by')} at {doc.get('exported_at')}"
    )
    for e in checked.entries:
        echo(
            f"OK       entry {e['seq']}: {e['action']} at {e['at']} by {e['actor'].get('name')}, "
            f"object {e['object'].get('type')} {e['object'].get('id')}"
        )
    return True
