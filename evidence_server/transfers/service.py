"""A docking's life on the server: open it with the device index, follow progress, sign the receipt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import documents, keys
from evidence_server.db import utcnow
from evidence_server.recordings import custody
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer, TransferFile, VanishedFile


class TransferError(Exception):
    pass


@dataclass
class Opened:
    transfer: Transfer
    created: bool
    already_held: list[dict[str, Any]]
    vanished: list[str]


def vanished_since(
    previous_index: list[dict[str, Any]], current_index: list[dict[str, Any]], held: set[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Files of an earlier index that are gone now and were never transferred. Pure."""
    now = {(e["path"], int(e["size"])) for e in current_index}
    return [
        e for e in previous_index if (e["path"], int(e["size"])) not in now and (e["path"], int(e["size"])) not in held
    ]


def _held(session: Session, serial: str, entries: list[dict[str, Any]]) -> list[tuple[str, Recording]]:
    """Index entries whose bytes this device delivered before and whose stored copy is intact."""
    return custody.held_for_device(session, serial, [(e["path"], int(e["size"])) for e in entries])


def open_transfer(
    session: Session, station: Station, payload: dict[str, Any], *, unit_id: int | None = None, own_unit: bool = True
) -> Opened:
    """Create the transfer (or return the existing one: the station's UUID makes this idempotent).

    ``unit_id``: the unit the transfer belongs to (default: the station's); ``own_unit``: the device
    belongs to the station's unit, and only then are vanished files recorded.
    """
    existing = session.get(Transfer, payload["transfer_id"])
    serial = payload["device"]["serial"]
    if existing is not None and (existing.station_id != station.id or existing.device_serial != serial):
        raise TransferError("transfer id already used by another station or device")
    index = payload["index"]
    held = _held(session, serial, index)
    held_out = [{"path": path, "size": r.size, "blake3": r.blake3, "recording_id": r.id} for path, r in held]
    if existing is not None:
        return Opened(existing, False, held_out, [])

    status = payload.get("device_status") or {}
    clock, read_at = status.get("clock"), status.get("read_at")
    offset = None
    if clock and read_at:
        offset = (documents.parse_iso(clock) - documents.parse_iso(read_at)).total_seconds()
    officer = payload.get("officer") or {}
    transfer = Transfer(
        id=payload["transfer_id"],
        station_id=station.id,
        unit_id=station.unit_id if unit_id is None else unit_id,
        device_serial=serial,
        device=payload["device"],
        officer_no=officer.get("number"),
        officer_name=officer.get("name"),
        docked_at=documents.parse_iso(payload["docked_at"]),
        device_clock=documents.parse_iso(clock) if clock else None,
        clock_offset_s=offset,
        battery_percent=status.get("battery_percent"),
        storage_total_bytes=status.get("storage_total_bytes"),
        storage_free_bytes=status.get("storage_free_bytes"),
        index=index,
        rejected=payload.get("rejected") or [],
        files_total=len(index) - len(held),
        bytes_total=sum(int(e["size"]) for e in index) - sum(r.size for _, r in held),
    )
    session.add(transfer)
    session.flush()
    vanished = _record_vanished(session, transfer) if own_unit else []
    return Opened(transfer, True, held_out, vanished)


def _record_vanished(session: Session, transfer: Transfer) -> list[str]:
    previous = session.scalar(
        select(Transfer)
        .where(
            Transfer.device_serial == transfer.device_serial,
            Transfer.id != transfer.id,
            Transfer.docked_at <= transfer.docked_at,
        )
        .order_by(Transfer.docked_at.desc())
        .limit(1)
    )
    if previous is None:
        return []
    gone_candidates = [
        e
        for e in previous.index
        if (e["path"], int(e["size"])) not in {(c["path"], int(c["size"])) for c in transfer.index}
    ]
    held = {(path, r.size) for path, r in _held(session, transfer.device_serial, gone_candidates)}
    gone = vanished_since(previous.index, transfer.index, held)
    for e in gone:
        exists = session.scalar(
            select(VanishedFile.id).where(
                VanishedFile.device_serial == transfer.device_serial,
                VanishedFile.path == e["path"],
                VanishedFile.size == int(e["size"]),
            )
        )
        if exists is None:
            session.add(
                VanishedFile(
                    device_serial=transfer.device_serial,
                    path=e["path"],
                    size=int(e["size"]),
                    mtime=e.get("mtime"),
                    last_seen_transfer_id=previous.id,
                    noticed_transfer_id=transfer.id,
                )
            )
    return [e["path"] for e in gone]


def confirmable(
    rec: Recording | None, f: documents.ManifestFile, listed: set[tuple[str, int]], delivered: set[tuple[int, str]]
) -> bool:
    """May a receipt confirm this manifest file? Only bytes the server holds intact, under the digests and
    size named, at a path this transfer's index listed, which this device itself delivered. Pure."""
    return (
        rec is not None
        and (rec.sha256, rec.size) == (f.sha256, f.size)
        and (f.path, f.size) in listed
        and (rec.id, f.path) in delivered
        and custody.intact(rec)
    )


PROGRESS_STATES = {"waiting", "copying", "uploading", "done", "failed", "interrupted"}


def update_progress(transfer: Transfer, data: dict[str, Any]) -> None:
    if data.get("state") not in PROGRESS_STATES:
        raise TransferError(f"state must be one of {sorted(PROGRESS_STATES)}")
    transfer.state = data["state"]
    for field in ("files_total", "files_done", "bytes_total", "bytes_done"):
        if data.get(field) is not None:
            setattr(transfer, field, max(0, int(data[field])))
    transfer.progress_message = (data.get("message") or None) and str(data["message"])[:500]
    transfer.progress_at = utcnow()


def _recordings_by_blake3(session: Session, manifest: documents.Manifest) -> dict[str, Recording]:
    """The stored recordings the manifest's fingerprints name."""
    if not manifest.files:
        return {}
    stmt = select(Recording).where(Recording.blake3.in_([f.blake3 for f in manifest.files]))
    return {r.blake3: r for r in session.scalars(stmt).all()}


def _transfer_files(session: Session, transfer: Transfer) -> dict[str, TransferFile]:
    """The transfer's files by path."""
    stmt = select(TransferFile).where(TransferFile.transfer_id == transfer.id)
    return {tf.path: tf for tf in session.scalars(stmt).all()}


def _confirmed_file(f: documents.ManifestFile, rec: Recording) -> dict[str, Any]:
    """A file as the receipt confirms it: the manifest's fingerprints (and the SM3 the server computed from
    the same bytes, where it has one) and the recording that holds them."""
    out = {
        "path": f.path,
        "size": f.size,
        "blake3": f.blake3,
        "sha256": f.sha256,
        "recording_id": rec.id,
        "verified_at": documents.utc_iso(rec.verified_at),
    }
    if rec.sm3:
        out["sm3"] = rec.sm3
    return out


def _confirm_files(
    session: Session, transfer: Transfer, manifest: documents.Manifest
) -> tuple[list[dict[str, Any]], list[str]]:
    """(confirmed files, missing paths): a file is confirmed when the server holds and verified it for this
    device; a file held from an earlier dock is linked to this transfer too."""
    confirmed: list[dict[str, Any]] = []
    missing: list[str] = []
    by_blake3 = _recordings_by_blake3(session, manifest)
    listed = {(e["path"], int(e["size"])) for e in transfer.index}
    delivered = custody.sighted(session, transfer.device_serial, [r.id for r in by_blake3.values()])
    links = _transfer_files(session, transfer)
    for f in manifest.files:
        rec = by_blake3.get(f.blake3)
        if not confirmable(rec, f, listed, delivered):
            missing.append(f.path)
            continue
        assert rec is not None
        if f.path not in links:  # held from an earlier dock of this device: link it to this transfer too
            link = TransferFile(transfer_id=transfer.id, recording_id=rec.id, path=f.path, verified_at=rec.verified_at)
            session.add(link)
            links[f.path] = link
        confirmed.append(_confirmed_file(f, rec))
    return confirmed, missing


def complete(
    session: Session,
    station: Station,
    transfer: Transfer,
    manifest: documents.Manifest,
    key: Ed25519PrivateKey | keys.Signer,
    key_id: str,
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Check the manifest against what the server verified; sign a receipt for what matches."""
    if manifest.transfer_id != transfer.id:
        raise TransferError("manifest names another transfer")
    confirmed, missing = _confirm_files(session, transfer, manifest)
    digest = manifest.digest()
    receipt = documents.sign(
        documents.make_receipt(
            transfer_id=transfer.id,
            manifest_digest=digest,
            files=confirmed,
            issued_at=now or utcnow(),
            server={
                "key_id": key_id,
                "station_id": station.id,
                "station": station.name,
                "device_serial": transfer.device_serial,
            },
        ),
        key,
    )
    transfer.manifest = manifest.to_dict()
    transfer.manifest_blake3 = digest
    transfer.receipt = receipt
    transfer.completed_at = utcnow()
    transfer.state = "done" if not missing else "failed"
    return receipt, missing
