"""Finishing a tus upload: check what arrived, store it, record it, audit it, queue what follows.

Runs while the request holds the upload's lock (``Receiver.locked``), on exactly the bytes staged for
this upload: a recording is only ever made from bytes that were received and hashed here. Nothing in
storage is trusted on its own: ``put_verified`` compares the digests of an object already under the
key, and replaces a damaged one, which repairs the recording (audited ``recording.repaired``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from custodia_wire.fingerprint import Fingerprint
from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.recordings import custody
from evidence_server.recordings.models import DAMAGED, Recording
from evidence_server.storage.base import object_key
from evidence_server.storage.blockmap import BlockMap
from evidence_server.transfers.models import Transfer
from evidence_server.uploads import keylock, service
from evidence_server.uploads.models import Upload

#: A docked recorder's GNSS position files (evidence_server/push/tracks.py reads them; named here, not
#: imported, so uploads stay below push).
GNSS_SIDECARS = (".nmea", ".gpx")


@dataclass(frozen=True)
class Verified:
    recording_id: int
    created: bool
    superseded: list[str]


@dataclass(frozen=True)
class Rejected:
    incident_id: int


def _reject(
    ctx: ServerContext, session: Session, upload: Upload, got: Fingerprint, request: Request | None
) -> Rejected:
    incident = service.mismatch_incident(session, upload, got)
    session.flush()
    audit(
        session,
        "upload.rejected",
        request=request,
        object_type="upload",
        object_id=upload.id,
        details={"incident_id": incident.id, "path": upload.path},
    )
    session.commit()
    ctx.receiver.discard(upload.id)
    return Rejected(incident.id)


def _keep_block_map(session: Session, rec: Recording, bm: BlockMap) -> None:
    try:
        have = custody.load_block_map(session, rec)
    except custody.MapUntrusted:
        have = None  # a map that does not hash to its root is replaced by the one just verified
    if have is None:
        custody.save_block_map(session, rec, bm, "receipt")


def _repair(session: Session, rec: Recording, upload: Upload, transfer: Transfer, request: Request | None) -> None:
    previous = rec.fixity_state
    rec.fixity_state, rec.fixity_checked_at = "ok", utcnow()
    audit(
        session,
        "recording.repaired",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={
            "previous_state": previous,
            "upload_id": upload.id,
            "transfer_id": transfer.id,
            "device_serial": transfer.device_serial,
            "path": upload.path,
            "blake3": rec.blake3,
            "sha256": rec.sha256,
            "size": rec.size,
        },
    )


def _one_at_a_time(session: Session, upload: Upload, blake3: str) -> None:
    """Uploads of the same bytes (two recorders' empty segments, two streams of one docking) finalize
    one after the other, so the second finds the first's recording instead of failing to make its own
    (a UNIQUE violation, a 500 the station had to retry). PostgreSQL: a lock on the bytes' BLAKE3 until
    this transaction ends. SQLite: the database's write lock, taken now (writers take turns there anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("recording " + blake3, 0))))
    else:
        session.execute(update(Upload).where(Upload.id == upload.id).values(state=Upload.state))


def finalize(ctx: ServerContext, session: Session, upload: Upload, request: Request | None) -> Verified | Rejected:
    """Verify the staged bytes of a complete upload; store and record them, or reject them.

    Raises StorageFullError (nothing recorded; the staged bytes stay, the station retries).
    """
    got, bm = ctx.receiver.finish(upload.id)
    if (got.blake3, got.sha256, got.size) != (upload.declared_blake3, upload.declared_sha256, upload.length):
        return _reject(ctx, session, upload, got, request)
    keylock.storing(session, object_key(got.blake3_hex))  # until the record commits: see keylock
    key = ctx.store.put_verified(ctx.receiver.path(upload.id), got.blake3_hex, got.sha256_hex, got.size)
    _one_at_a_time(session, upload, got.blake3)  # after storing: only keylock's shared lock while bytes are copied
    was = session.scalar(select(Recording.fixity_state).where(Recording.blake3 == got.blake3))
    rec = service.record_verified(session, upload, key, utcnow(), got.sm3)
    transfer = session.get_one(Transfer, upload.transfer_id)
    _keep_block_map(session, rec, bm)
    if was in DAMAGED:
        _repair(session, rec, upload, transfer, request)
    custody.add_sighting(
        session,
        rec,
        device_serial=transfer.device_serial,
        path=upload.path,
        transfer_id=transfer.id,
        station_id=upload.station_id,
        upload_id=upload.id,
        request=request,
    )
    superseded = service.supersede_siblings(session, upload)
    session.flush()
    audit(
        session,
        "recording.verified",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={
            "upload_id": upload.id,
            "path": upload.path,
            "blake3": rec.blake3,
            "sha256": rec.sha256,
            **({"sm3": rec.sm3} if rec.sm3 else {}),  # none when SM3 is left to the backfill
            "size": rec.size,
            "block_map_root": rec.block_map_root,
            # whose it is: the unit that sees it, the recorder and the officer it is filed under
            "unit_id": rec.unit_id,
            "device_serial": rec.device_serial,
            "officer_no": rec.officer_no,
            "transfer_id": upload.transfer_id,
            "superseded_uploads": superseded,
        },
    )
    created, repaired, rec_id = was is None, was in DAMAGED, rec.id
    session.commit()
    ctx.receiver.unlock_file(upload.id)
    for sibling in superseded:
        ctx.receiver.discard(sibling)
    if created:
        ctx.tasks.send("media.probe_recording", rec_id)
        ctx.tasks.send("media.derive_recording", rec_id)  # thumbnail, and a proxy if needed
        ctx.tasks.send("cases.auto_link_recording", rec_id)  # the case of its checkout
        if upload.path.lower().endswith(GNSS_SIDECARS):
            ctx.tasks.send("push.track_from_sidecar", rec_id)  # positions beside the video, kept as its track
    elif repaired:
        ctx.tasks.send("media.derive_recording", rec_id)  # what a damaged copy could not give
    return Verified(rec_id, created, superseded)


def mark_lost(session: Session, upload: Upload, request: Request | None) -> None:
    """The upload's staged bytes are gone (a crash, a lost disk): it can never complete; the station
    starts a new upload, whose bytes are received and verified afresh."""
    upload.state = "lost"
    upload.completed_at = utcnow()
    audit(
        session,
        "upload.lost",
        request=request,
        object_type="upload",
        object_id=upload.id,
        details={"path": upload.path, "transfer_id": upload.transfer_id, "length": upload.length},
    )
    session.commit()
