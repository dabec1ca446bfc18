"""Verified reads: every path that hands out original bytes reads them through here.

Each block is checked against the recording's block map before a byte of it is handed on, so a
damaged copy never reaches a player, a court package, a backup or ffmpeg. On a mismatch (or a
missing object) the read stops, the copy is marked damaged in its own short transaction, an
integrity incident is recorded and audited (``recording.damaged``), and ``CopyDamaged`` is raised.
Callers that have not started answering turn it into a 409; a stream already under way is cut off,
so the receiver sees a broken transfer, never a complete one with wrong bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from evidence_server.context import ServerContext
from evidence_server.custody import blockmaps
from evidence_server.custody.damage import CopyDamaged, mark_damaged
from evidence_server.recordings.models import DAMAGED, Recording
from evidence_server.storage.blockmap import BlockMap, BlockMismatch, verified_range

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Original:
    """What a read needs of a recording, as plain values: reads outlive the request's session."""

    recording_id: int
    storage_key: str
    size: int
    blake3: str
    sha256: str
    block_map: BlockMap


def original(ctx: ServerContext, session: Session, rec: Recording, where: str) -> Original:
    """Prepare a verified read of ``rec``: refuse a copy known to be damaged; load its block map (made
    now from verified bytes if it has none yet, which reads the whole copy once)."""
    if rec.fixity_state in DAMAGED:
        raise CopyDamaged(rec.id, rec.fixity_state)
    bm = blockmaps.load(session, rec)
    if bm is None:
        bm = blockmaps.make(ctx, rec.id, where)
        session.refresh(rec)
    return Original(rec.id, rec.storage_key, rec.size, rec.blake3, rec.sha256, bm)


def chunks(
    ctx: ServerContext, src: Original, where: str, start: int = 0, end: int | None = None
) -> Generator[bytes, None, None]:
    """Bytes ``start``..``end`` (inclusive; None: to the last) of the original, each block checked first."""
    end = src.size - 1 if end is None else end
    if src.size == 0 or end < start:
        return
    bm = src.block_map
    first, last = bm.span(start, end)
    read_end = min(bm.size, (last + 1) * bm.block_size) - 1
    try:
        yield from verified_range(
            bm, ctx.store.iter_range(src.storage_key, first * bm.block_size, read_end, chunk=bm.block_size), start, end
        )
    except BlockMismatch as exc:
        details = {"block": exc.block, "offset": exc.offset, "why": exc.why, "expected_root": bm.root}
        incident = mark_damaged(ctx, src.recording_id, "failed", where, details)
        raise CopyDamaged(src.recording_id, "failed", incident) from None
    except FileNotFoundError:
        incident = mark_damaged(ctx, src.recording_id, "missing", where, {"why": "object not in the store"})
        raise CopyDamaged(src.recording_id, "missing", incident) from None


async def prefetched(blocks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """Read and check the next block on a worker thread while the previous one is being sent."""
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next, blocks, None)
    try:
        while (block := await pending) is not None:
            pending = loop.run_in_executor(None, next, blocks, None)
            yield block
    finally:
        if not pending.done():
            await asyncio.wait([pending])
        blocks.close()


def first_then_rest(blocks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    """Read (and check) the first block now, so a damaged start is an error answer, not a cut stream."""
    head = next(blocks, None)

    def rest() -> Generator[bytes, None, None]:
        if head is not None:
            yield head
            yield from blocks

    return rest()
