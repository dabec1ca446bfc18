"""Creating uploads from tus metadata, and turning a complete, verified upload into a recording."""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from custodia_wire import UPLOAD_METADATA_KEYS, documents, fingerprint
from custodia_wire.fingerprint import Fingerprint
from custodia_wire.paths import UnsafePathError, check_device_path
from evidence_server.db import utcnow
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer, TransferFile
from evidence_server.uploads.models import IntegrityIncident, Upload, receiving

REQUIRED_KEYS = ("transfer_id", "path", "blake3", "sha256")
OPTIONAL_KEYS = tuple(k for k in UPLOAD_METADATA_KEYS if k not in REQUIRED_KEYS)


class BadUpload(ValueError):
    """The upload's headers or metadata are malformed; nothing was created."""


class UploadTooLarge(BadUpload):
    """Upload-Length is above Tus-Max-Size (tus: 413)."""


def open_uploads(session: Session, station_id: int) -> int:
    return (
        session.scalar(select(func.count()).select_from(Upload).where(Upload.station_id == station_id, receiving()))
        or 0
    )


def parse_metadata(header: str | None) -> dict[str, str]:
    """Decode a tus ``Upload-Metadata`` header: ``key b64value,key b64value``."""
    out: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        if not key or key in out:
            raise BadUpload(f"metadata key {key!r} empty or repeated")
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadUpload(f"metadata value of {key!r} is not base64 UTF-8") from exc
    return out


def _optional_time(meta: dict[str, str], key: str) -> str | None:
    value = meta.get(key)
    if value:
        try:
            documents.parse_iso(value)
        except (ValueError, documents.DocumentError) as exc:
            raise BadUpload(f"{key} is not an ISO timestamp with zone") from exc
    return value or None


def create_upload(session: Session, station: Station, length: int, meta: dict[str, str], max_bytes: int) -> Upload:
    missing = [k for k in REQUIRED_KEYS if not meta.get(k)]
    if missing:
        raise BadUpload(f"Upload-Metadata lacks {', '.join(missing)}")
    unknown = set(meta) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS)
    if unknown:
        raise BadUpload(f"unknown metadata keys: {', '.join(sorted(unknown))}")
    if length < 0:
        raise BadUpload("Upload-Length must not be negative")
    if length > max_bytes:
        raise UploadTooLarge(f"Upload-Length {length} is above the largest upload this server takes, {max_bytes}")
    try:
        check_device_path(meta["path"])
        fingerprint.parse(meta["blake3"], "blake3")
        fingerprint.parse(meta["sha256"], "sha256")
    except (UnsafePathError, fingerprint.FingerprintError) as exc:
        raise BadUpload(str(exc)) from exc
    clean = {k: meta[k] for k in REQUIRED_KEYS}
    for key in ("mtime", "copied_at", "started_at"):
        clean[key] = _optional_time(meta, key) or ""
    transfer = session.get(Transfer, meta["transfer_id"])
    if transfer is None or transfer.station_id != station.id:
        raise BadUpload("unknown transfer for this station")
    upload = Upload(
        id=secrets.token_hex(16),
        station_id=station.id,
        transfer_id=transfer.id,
        path=meta["path"],
        length=length,
        declared_blake3=meta["blake3"],
        declared_sha256=meta["sha256"],
        meta=clean,
    )
    session.add(upload)
    return upload


def mismatch_incident(session: Session, upload: Upload, got: Fingerprint) -> IntegrityIncident:
    incident = IntegrityIncident(
        kind="upload_digest_mismatch",
        station_id=upload.station_id,
        upload_id=upload.id,
        transfer_id=upload.transfer_id,
        details={
            "path": upload.path,
            "declared": {"blake3": upload.declared_blake3, "sha256": upload.declared_sha256, "size": upload.length},
            "received": {"blake3": got.blake3, "sha256": got.sha256, "size": got.size},
        },
    )
    session.add(incident)
    upload.state = "rejected"
    upload.completed_at = utcnow()
    return incident


_starts_cache: dict[str, dict[str, str]] = {}


def _name_starts(transfer_id: str, index: list[dict[str, Any]]) -> dict[str, str]:
    """Path → start time read from the file name, per transfer (an index never changes: cache it)."""
    starts = _starts_cache.get(transfer_id)
    if starts is None:
        if len(_starts_cache) > 64:
            _starts_cache.clear()
        starts = _starts_cache[transfer_id] = {e["path"]: e["started_at"] for e in index if e.get("started_at")}
    return starts


def _ts(value: str | None) -> datetime | None:
    return documents.parse_iso(value) if value else None


def record_verified(
    session: Session, upload: Upload, storage_key: str, received_at: datetime, sm3: str | None = None
) -> Recording:
    """Make (or find) the recording for verified bytes and link it to the upload's transfer.

    ``sm3`` is the SM3 of the same verified bytes; a recording stored before SM3 was computed gets it here.
    """
    transfer = session.get_one(Transfer, upload.transfer_id)
    now = utcnow()
    rec = session.scalar(select(Recording).where(Recording.blake3 == upload.declared_blake3))
    if rec is None:
        started = upload.meta.get("started_at") or _name_starts(transfer.id, transfer.index).get(upload.path)
        rec = Recording(
            blake3=upload.declared_blake3,
            sha256=upload.declared_sha256,
            sm3=sm3,
            size=upload.length,
            storage_key=storage_key,
            unit_id=transfer.unit_id,
            station_id=upload.station_id,
            transfer_id=transfer.id,
            device_serial=transfer.device_serial,
            officer_no=transfer.officer_no,
            officer_name=transfer.officer_name,
            original_path=upload.path,
            original_name=PurePosixPath(upload.path).name,
            device_mtime=_ts(upload.meta.get("mtime")),
            name_started_at=_ts(started),
            docked_at=transfer.docked_at,
            copied_at=_ts(upload.meta.get("copied_at")),
            uploaded_at=received_at,
            verified_at=now,
        )
        session.add(rec)
        session.flush()
    elif rec.sm3 is None and sm3 is not None:
        rec.sm3 = sm3
    link = session.scalar(
        select(TransferFile).where(TransferFile.transfer_id == transfer.id, TransferFile.path == upload.path)
    )
    if link is None:
        session.add(
            TransferFile(
                transfer_id=transfer.id,
                recording_id=rec.id,
                path=upload.path,
                copied_at=_ts(upload.meta.get("copied_at")),
                verified_at=now,
            )
        )
    upload.state = "verified"
    upload.recording_id = rec.id
    upload.completed_at = now
    return rec


def supersede_siblings(session: Session, upload: Upload) -> list[str]:
    """Other unfinished uploads of the same file from the same station are void now.

    They arise when a station's POST created an upload but the answer never reached it (an API
    process killed, a proxy timeout): the station then created another. Returns their ids, whose
    staged bytes the caller discards once the transaction is committed.
    """
    siblings = session.scalars(
        select(Upload).where(
            Upload.station_id == upload.station_id,
            Upload.transfer_id == upload.transfer_id,
            Upload.path == upload.path,
            Upload.declared_blake3 == upload.declared_blake3,
            receiving(),
            Upload.id != upload.id,
        )
    ).all()
    now = utcnow()
    for sibling in siblings:
        sibling.state = "superseded"
        sibling.completed_at = now
    return [s.id for s in siblings]


def describe(upload: Upload) -> dict[str, Any]:
    return {"id": upload.id, "state": upload.state, "path": upload.path, "length": upload.length}
