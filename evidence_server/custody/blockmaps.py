"""Block maps in the database: loaded and checked before a read, made from verified bytes when absent.

A map made on receipt comes from the same pass that verified the upload (evidence_server/uploads).
A recording stored before maps existed gets one here: its whole copy is read once, both whole-file
fingerprints are checked, and only then is the map kept and its root audited
(``recording.block_map``), so the map only ever describes bytes that were verified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Select, select

from custodia_wire.fingerprint import Hasher
from evidence_server.audit.evidence import logged_digests
from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.custody.damage import CopyDamaged, mark_damaged
from evidence_server.recordings.custody import MapUntrusted, load_block_map, save_block_map
from evidence_server.recordings.models import Recording, RecordingBlockMap, fixity_sound
from evidence_server.storage.blockmap import BlockHasher, BlockMap

__all__ = ["MapUntrusted", "backfill", "load", "make"]
load = load_block_map

log = logging.getLogger(__name__)


def make(ctx: ServerContext, recording_id: int, where: str = "block map") -> BlockMap:
    """Read the whole stored copy once, check both fingerprints, and keep its map; raise CopyDamaged
    (after recording the damage) when the bytes are not the recording's. The fingerprints are the
    ones the audit log recorded at verification, never the editable row's (the row's only where the
    log has none, a recording older than its log)."""

    with ctx.sessionmaker() as session:
        rec = session.get_one(Recording, recording_id)
        have = load(session, rec)
        if have is not None:
            return have
        key, size, b3, sha = rec.storage_key, rec.size, rec.blake3, rec.sha256
        logged = logged_digests(session, [recording_id]).get(recording_id)
        if logged is not None:
            size, b3, sha = logged.size, logged.blake3, logged.sha256
    whole, blocks = Hasher(), BlockHasher(ctx.settings.block_map_block_bytes)
    try:
        if size:
            for chunk in ctx.store.iter_range(key, 0, size - 1, chunk=blocks.block_size):
                whole.update(chunk)
                blocks.update(chunk)
        elif not ctx.store.exists(key):
            raise FileNotFoundError(key)
    except FileNotFoundError:
        raise CopyDamaged(recording_id, "missing", mark_damaged(ctx, recording_id, "missing", where, {})) from None
    got = whole.result()
    if (got.blake3, got.sha256, got.size) != (b3, sha, size):
        found = {"blake3": got.blake3, "sha256": got.sha256, "size": got.size}
        incident = mark_damaged(ctx, recording_id, "failed", where, {"found": found})
        raise CopyDamaged(recording_id, "failed", incident)
    bm = blocks.result()
    with ctx.sessionmaker() as session:
        rec = session.get_one(Recording, recording_id)
        if session.get(RecordingBlockMap, rec.id) is None:
            save_block_map(session, rec, bm, "backfill")
            audit(
                session,
                "recording.block_map",
                object_type="recording",
                object_id=rec.id,
                details={"block_map_root": bm.root, "block_size": bm.block_size, "source": "backfill"},
            )
            session.commit()
    return bm


@dataclass
class BackfillReport:
    made: list[int] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)


def unmapped(files: int) -> Select[int]:
    """Up to ``files`` recordings with no block map whose copy is sound, oldest first.

    A map is saved with its root on the recording (``custody.save_block_map``; nothing deletes one), so the
    recordings without a root are those to look at: the partial index ``ix_recordings_unmapped`` holds
    them, none in service once the backfill is done. (The join to the maps stays: a map without its root
    is not made again.) Before, each run read every recording and every map: 0.5 s at 1M recordings.
    ``fixity_sound`` leaves out ``DAMAGED`` copies too (a subset of ``FIXITY_BAD``)."""
    return (
        select(Recording.id)
        .outerjoin(RecordingBlockMap, RecordingBlockMap.recording_id == Recording.id)
        .where(Recording.block_map_root.is_(None), fixity_sound(), RecordingBlockMap.recording_id.is_(None))
        .order_by(Recording.id)
        .limit(files)
    )


def backfill(ctx: ServerContext, files: int | None = None) -> BackfillReport:
    """Make the maps of up to ``files`` recordings that have none (stored before maps existed). Idempotent."""

    files = ctx.settings.block_map_backfill_files_per_run if files is None else files
    report = BackfillReport()
    with ctx.sessionmaker() as session:
        todo = session.scalars(unmapped(files)).all()
    for rec_id in todo:
        try:
            make(ctx, rec_id, "block map backfill")
            report.made.append(rec_id)
        except CopyDamaged:
            report.damaged.append(rec_id)
    return report
