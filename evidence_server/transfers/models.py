from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from custodia_wire.documents import utc_iso
from evidence_server.db import Base, utcnow


class Transfer(Base):
    __tablename__ = "transfers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUID made by the station
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    device_serial: Mapped[str] = mapped_column(String(64), index=True)
    device: Mapped[dict[str, Any]] = mapped_column(JSON)
    officer_no: Mapped[str | None] = mapped_column(String(32), index=True)
    officer_name: Mapped[str | None] = mapped_column(String(200))
    docked_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    device_clock: Mapped[datetime | None]
    clock_offset_s: Mapped[float | None]
    battery_percent: Mapped[int | None]
    storage_total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_free_bytes: Mapped[int | None] = mapped_column(BigInteger)

    index: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the device's file index at this dock
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    state: Mapped[str] = mapped_column(String(16), default="docked")
    files_total: Mapped[int] = mapped_column(default=0)
    files_done: Mapped[int] = mapped_column(default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_message: Mapped[str | None] = mapped_column(String(500))
    progress_at: Mapped[datetime | None]

    # the task (R5): what the inspection was about and its case, picked at the dock, taken from the
    # checkout, or entered later. Plain ids, no foreign keys: adding one would rebuild this table on SQLite.
    enforcement_matter: Mapped[str | None] = mapped_column(String(500))
    case_id: Mapped[int | None] = mapped_column(index=True)
    task_recorded_at: Mapped[datetime | None]
    task_recorded_by_id: Mapped[int | None]

    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    manifest_blake3: Mapped[str | None] = mapped_column(String(71))
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[datetime | None]


#: what the entry that opens a transfer (``transfer.docked``; ``push.recording_opened`` for a pushed recording)
#: records of it, for the rows check (evidence_server.binding): where and when it docked (the 24-hour deadline
#: runs from ``docked_at``), whose it is (its unit decides who sees it), how far the device's clock was off
#: (which footage a checkout takes), and a digest of the device's file index and of the files the station
#: refused (what compliance finds "not transferred" and "refused" by). Entries written before say less.
DOCKED_EVIDENCE = (
    "unit_id",
    "station_id",
    "device_serial",
    "officer_no",
    "docked_at",
    "clock_offset_s",
    "index_sha256",
)
#: what ``transfer.task`` records: the case and the enforcement matter the footage is filed under
TASK_EVIDENCE = ("case_id", "enforcement_matter")


def index_digest(index: list[dict[str, Any]] | None, rejected: list[dict[str, Any]] | None) -> str:
    """The SHA-256 of a dock's file index and refused files, as JSON with sorted keys. ASCII-escaped, so that a
    name no encoding can write (a device's bytes, refused by the station) still digests."""
    body = json.dumps({"index": index or [], "rejected": rejected or []}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(body.encode("ascii")).hexdigest()


def docked_evidence(transfer: Transfer, *, index: bool = True) -> dict[str, Any]:
    """The ``DOCKED_EVIDENCE`` of a transfer, as its opening entry records them (``index=False``: all but the
    index's digest, for a pushed recording, whose index grows by each clip received, each logged on its own).
    Pure."""
    out = {
        "unit_id": transfer.unit_id,
        "station_id": transfer.station_id,
        "device_serial": transfer.device_serial,
        "officer_no": transfer.officer_no,
        "docked_at": utc_iso(transfer.docked_at),
        "clock_offset_s": transfer.clock_offset_s,
    }
    if index:
        out["index_sha256"] = index_digest(transfer.index, transfer.rejected)
    return out


class TransferFile(Base):
    """A recording as it was received in one transfer (a re-dock may bring known bytes again)."""

    __tablename__ = "transfer_files"
    __table_args__ = (UniqueConstraint("transfer_id", "path"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    copied_at: Mapped[datetime | None]
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class VanishedFile(Base):
    """A file seen in an earlier index of a device, gone at a later dock without being transferred."""

    __tablename__ = "vanished_files"
    __table_args__ = (UniqueConstraint("device_serial", "path", "size"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device_serial: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[str | None] = mapped_column(String(40))
    last_seen_transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"))
    noticed_transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"))
    noticed_at: Mapped[datetime] = mapped_column(default=utcnow)
