"""What a court package needs from the audit log and the time-stamping authority: a signed checkpoint at
export time, an inclusion proof for each custody entry, and RFC 3161 time-stamps.

The checkpoint is signed (and committed) in a session of its own, before the package reads its custody
entries, so every entry the package holds lies inside the tree the checkpoint signed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from custodia_wire import merkle
from evidence_server.audit import tsa
from evidence_server.audit.log import issue_checkpoint
from evidence_server.audit.tiles import TreeReader
from evidence_server.context import ServerContext


@dataclass(frozen=True)
class ExportCheckpoint:
    note: str
    tree_size: int
    root_hash: str
    origin: str
    token: bytes | None  # RFC 3161 over the note's bytes


def tsa_url(ctx: ServerContext) -> str | None:
    return ctx.settings.package_tsa_url or ctx.settings.audit_tsa_url


def stamp(ctx: ServerContext, data: bytes, what: str) -> bytes | None:
    """A time-stamp token over ``data`` from the configured authority; None (logged) if none or it fails:
    a package is still complete and checkable without one (``tsa.stamp_for``)."""
    stamped = tsa.stamp_for(ctx.settings, data, what, tsa_url(ctx))
    return stamped[0] if stamped else None


def checkpoint_now(ctx: ServerContext) -> ExportCheckpoint:
    """Sign the log as it is now (or take the latest checkpoint if nothing was appended since)."""
    with ctx.sessionmaker() as session:
        cp, _ = issue_checkpoint(ctx, session)
        note, size, root, origin, token = cp.note, cp.tree_size, cp.root_hash, cp.origin, cp.tsa_token
    if token is None or (ctx.settings.package_tsa_url and cp.tsa_url != ctx.settings.package_tsa_url):
        token = stamp(ctx, note.encode("utf-8"), f"checkpoint {size}")
    return ExportCheckpoint(note, size, root, origin, token)


def proofs(session: Session, tree_size: int, seqs: list[int]) -> dict[int, list[str]]:
    """The inclusion proof (hex audit path) of each entry ``seq`` in the tree of ``tree_size`` entries."""
    if not seqs:
        return {}
    tree = TreeReader(session, tree_size)  # from the log's tiles: O(log n) hashes a proof, tiles read once
    return {i: [h.hex() for h in merkle.inclusion_path(i, tree_size, tree.subtree)] for i in sorted(set(seqs))}
