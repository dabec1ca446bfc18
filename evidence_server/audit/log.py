"""The audit log as a Merkle tree: checkpoints, proofs, and the full check anyone can rerun.

Entries are leaves (``seq`` = leaf index); the math is ``custodia_wire.merkle`` and the wire forms
``custodia_wire.auditlog``, shared with the offline verifier.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from custodia_wire import auditlog, merkle
from custodia_wire.auditlog import Checkpoint, LogError
from evidence_server.audit import tsa
from evidence_server.audit.models import AuditCheckpoint, AuditEvent, AuditLogHead
from evidence_server.audit.sequencer import sequence
from evidence_server.audit.service import entry_dict
from evidence_server.audit.tiles import TreeReader, extend_tiles
from evidence_server.context import ServerContext
from evidence_server.db import utcnow

log = logging.getLogger(__name__)
BATCH = 20_000
#: The columns of an entry, in ``auditlog.make_entry`` order, after id and the stored leaf hash.
ENTRY_COLUMNS = (
    AuditEvent.id,
    AuditEvent.leaf_hash,
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor_type,
    AuditEvent.actor_id,
    AuditEvent.actor_name,
    AuditEvent.action,
    AuditEvent.object_type,
    AuditEvent.object_id,
    AuditEvent.client_addr,
    AuditEvent.details,
)


class LogTampered(RuntimeError):
    """The stored log no longer extends what an earlier checkpoint signed: nothing new is signed."""


def stream_rows(session: Session, stmt: Executable) -> Any:
    """Rows in batches through Core (no ORM per-row work): the hot path of every full pass."""
    return session.connection().execute(stmt.execution_options(yield_per=BATCH))


def log_size(session: Session) -> int:
    """The number of committed entries (the head row moves with them, in the same transaction)."""
    size = session.scalar(select(AuditLogHead.size).where(AuditLogHead.id == 1))
    return int(size or 0)


def stored_leaf_hashes(session: Session, size: int) -> Iterator[bytes]:
    """The stored leaf hashes of entries 0..size-1, in order; LogError if one is missing."""
    expected = 0
    stmt = select(AuditEvent.seq, AuditEvent.leaf_hash).where(AuditEvent.seq < size).order_by(AuditEvent.seq)
    for seq, leaf in stream_rows(session, stmt):
        if seq != expected:
            raise LogError(f"audit entry {expected} is missing from the database")
        expected += 1
        yield bytes.fromhex(leaf)
    if expected != size:
        raise LogError(f"audit entry {expected} is missing from the database")


def checkpoint_out(cp: AuditCheckpoint, public_key_b64: str) -> dict[str, Any]:
    return {
        "origin": cp.origin,
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash,
        "issued_at": auditlog.entry_time(cp.issued_at),
        "key_id": cp.key_id,
        "public_key": public_key_b64,
        "note": cp.note,
        "tsa_url": cp.tsa_url,
        "tsa_token": base64.b64encode(cp.tsa_token).decode() if cp.tsa_token else None,
        "tsa_time": auditlog.entry_time(cp.tsa_time) if cp.tsa_time else None,
    }


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1))


def checkpoint_at(session: Session, size: int) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.tree_size == size))


def _frontier_of(cp: AuditCheckpoint | None) -> merkle.Frontier:
    """The tree as the checkpoint signed it; LogTampered if its stored state does not give its root."""
    if cp is None:
        return merkle.Frontier()
    try:
        frontier = merkle.Frontier.restore(cp.tree_size, [bytes.fromhex(h) for h in cp.frontier.split(",") if h])
    except ValueError as exc:
        raise LogTampered(f"checkpoint {cp.tree_size} was altered: {exc}") from exc
    if frontier.root().hex() != cp.root_hash:
        raise LogTampered(f"checkpoint {cp.tree_size} was altered: its tree state does not give its root")
    return frontier


def _extend(session: Session, frontier: merkle.Frontier, size: int) -> bytes:
    """Append entries frontier.size..size-1, each rehashed from its columns and checked on the way;
    return their leaf hashes, concatenated."""
    added = bytearray()
    stmt = select(*ENTRY_COLUMNS).where(AuditEvent.seq >= frontier.size, AuditEvent.seq < size)
    for row in stream_rows(session, stmt.order_by(AuditEvent.seq)):
        leaf = auditlog.columns_leaf_hash(*row[2:])
        if row.seq != frontier.size or leaf.hex() != row.leaf_hash:
            raise LogTampered(
                f"audit entry {frontier.size} was altered or removed before it was checkpointed; "
                "run `custodia audit verify`"
            )
        frontier.append(leaf)
        added += leaf
    if frontier.size != size:
        raise LogTampered(f"audit entry {frontier.size} is missing; run `custodia audit verify`")
    return bytes(added)


def issue_checkpoint(ctx: ServerContext, session: Session, *, again: bool = True) -> tuple[AuditCheckpoint, bool]:
    """Sign the log as it is now (and timestamp it when a TSA is configured); (checkpoint, created).

    Idempotent: when nothing was appended since the latest checkpoint, that one is returned. The new
    tree is built on the latest checkpoint's own tree state, so it always extends what was signed
    before: a later rewrite of old rows cannot be laundered into a new checkpoint.
    """
    settings = ctx.settings
    sequence(ctx.engine)  # entries committed and still pending (group commit) are signed too
    size = log_size(session)
    latest = latest_checkpoint(session)
    if latest is not None and latest.tree_size >= size:
        return latest, False
    frontier = _frontier_of(latest)
    leaves = _extend(session, frontier, size)
    cp = Checkpoint(settings.audit_origin, size, frontier.root(), auditlog.entry_time(utcnow()))
    note = cp.sign(ctx.signer)
    token, tsa_time = None, None
    if settings.audit_tsa_url:
        try:
            token, tsa_time = tsa.timestamp(
                settings.audit_tsa_url, note.encode(), settings.audit_tsa_timeout_s, settings.tsa_hash
            )
        except (OSError, tsa.TimestampError) as exc:
            log.warning("checkpoint %d not timestamped by %s: %s", size, settings.audit_tsa_url, exc)
    row = AuditCheckpoint(
        origin=cp.origin,
        tree_size=size,
        root_hash=cp.root_hash.hex(),
        issued_at=datetime.fromisoformat(cp.issued_at.replace("Z", "+00:00")),
        key_id=ctx.key_id,
        note=note,
        frontier=",".join(h.hex() for h in frontier.subtrees),
        leaves=leaves,
        tsa_url=settings.audit_tsa_url if token else None,
        tsa_token=token,
        tsa_time=tsa_time,
    )
    session.add(row)
    extend_tiles(session, size)  # the interior hashes proofs against this checkpoint will read
    try:
        session.commit()
    except IntegrityError:  # another process checkpointed the same size (or built the same tiles) first
        session.rollback()
        existing = checkpoint_at(session, size)
        if existing is None and again:  # only the tiles collided: their builder has them now, sign again
            return issue_checkpoint(ctx, session, again=False)
        if existing is None:
            raise
        return existing, False
    return row, True


def inclusion_document(session: Session, seq: int, cp: AuditCheckpoint) -> dict[str, Any]:
    ev = session.scalar(select(AuditEvent).where(AuditEvent.seq == seq))
    if ev is None or seq >= cp.tree_size:
        raise LogError(f"entry {seq} is not in the log of size {cp.tree_size}")
    path = merkle.inclusion_path(seq, cp.tree_size, TreeReader(session, cp.tree_size).subtree)
    return {
        "format": auditlog.INCLUSION_FORMAT,
        "leaf_index": seq,
        "tree_size": cp.tree_size,
        "entry": entry_dict(ev),
        "leaf_hash": ev.leaf_hash,
        "root_hash": cp.root_hash,
        "audit_path": [h.hex() for h in path],
        "checkpoint": cp.note,
    }


def consistency_document(session: Session, old: AuditCheckpoint, new: AuditCheckpoint) -> dict[str, Any]:
    proof = merkle.consistency_path(old.tree_size, new.tree_size, TreeReader(session, new.tree_size).subtree)
    return {
        "format": auditlog.CONSISTENCY_FORMAT,
        "first": old.tree_size,
        "second": new.tree_size,
        "first_root": old.root_hash,
        "second_root": new.root_hash,
        "proof": [h.hex() for h in proof],
        "first_checkpoint": old.note,
        "second_checkpoint": new.note,
    }
