"""What the server holds for whom: sightings of a recording, intact copies, and block maps in the database.

A device may be told a recording is held, and may have it confirmed in a receipt, only if that
device itself delivered the bytes at that path (a ``Sighting``) and the stored copy is intact. Bytes
first brought by another recorder are uploaded by this one once, which proves it holds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.recordings.models import DAMAGED, Recording, RecordingBlockMap, Sighting
from evidence_server.storage.blockmap import BlockMap


class MapUntrusted(Exception):
    """The stored block map does not hash to the root recorded for the recording."""


def intact(rec: Recording) -> bool:
    """Custody holds: the stored copy is not known to be damaged or missing."""
    return rec.fixity_state not in DAMAGED


def held_for_device(session: Session, serial: str, entries: Iterable[tuple[str, int]]) -> list[tuple[str, Recording]]:
    """Of ``entries`` (path, size) on device ``serial``: those whose bytes this device delivered at that
    path, with a recording of that size whose stored copy is intact, as (path, recording)."""
    keys = list(entries)
    found: list[tuple[str, Recording]] = []
    for i in range(0, len(keys), 500):
        batch = keys[i : i + 500]
        rows = session.execute(
            select(Sighting.path, Recording)
            .join(Recording, Recording.id == Sighting.recording_id)
            .where(
                Sighting.device_serial == serial,
                tuple_(Sighting.path, Recording.size).in_(batch),
                Recording.fixity_state.not_in(DAMAGED),
            )
            .order_by(Sighting.id)
        ).all()
        seen: set[str] = set()
        for path, rec in rows:
            if path not in seen:
                seen.add(path)
                found.append((path, rec))
    return found


def sighted(session: Session, serial: str, recording_ids: Iterable[int]) -> set[tuple[int, str]]:
    """(recording id, path) of every sighting of these recordings on device ``serial``."""
    ids = list(set(recording_ids))
    if not ids:
        return set()
    return {
        (rid, path)
        for rid, path in session.execute(
            select(Sighting.recording_id, Sighting.path).where(
                Sighting.device_serial == serial, Sighting.recording_id.in_(ids)
            )
        )
    }


def add_sighting(
    session: Session,
    rec: Recording,
    *,
    device_serial: str,
    path: str,
    transfer_id: str,
    station_id: int,
    upload_id: str | None,
    request: Any = None,
) -> Sighting | None:
    """Note that a device delivered the recording's bytes at ``path`` in a transfer (a custody event)."""
    if session.scalar(select(Sighting.id).where(Sighting.transfer_id == transfer_id, Sighting.path == path)):
        return None
    sighting = Sighting(
        recording_id=rec.id,
        device_serial=device_serial,
        path=path,
        transfer_id=transfer_id,
        station_id=station_id,
        upload_id=upload_id,
    )
    session.add(sighting)
    audit(
        session,
        "recording.sighted",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={
            "device_serial": device_serial,
            "path": path,
            "transfer_id": transfer_id,
            "station_id": station_id,
            "upload_id": upload_id,
        },
    )
    return sighting


def load_block_map(session: Session, rec: Recording) -> BlockMap | None:
    """The recording's block map, checked against its recorded root; None when it has none yet."""
    row = session.get(RecordingBlockMap, rec.id)
    if row is None:
        return None
    bm = BlockMap(row.block_size, row.size, bytes(row.hashes))
    if not bm.well_formed() or bm.size != rec.size or bm.root != row.root or rec.block_map_root not in (None, row.root):
        raise MapUntrusted(f"recording {rec.id}: its block map does not match the root recorded for it")
    return bm


def save_block_map(session: Session, rec: Recording, bm: BlockMap, source: str) -> None:
    """Keep the map of verified bytes and its root on the recording (the caller audits the root)."""
    row = session.get(RecordingBlockMap, rec.id)
    if row is None:
        row = RecordingBlockMap(recording_id=rec.id)
        session.add(row)
    row.block_size, row.size, row.root, row.hashes, row.source = bm.block_size, bm.size, bm.root, bm.hashes, source
    rec.block_map_root = bm.root
