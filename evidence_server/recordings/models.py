from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow

#: Fixity states in which the stored bytes are no longer the evidence that was ingested (``disposed``:
#: removed on an approved disposal, see evidence_server/retention; the record and fingerprints stay).
FIXITY_BAD = frozenset({"failed", "missing", "disposed"})


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_device_path", "device_serial", "original_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    blake3: Mapped[str] = mapped_column(String(71), unique=True)  # "blake3:<hex>"
    sha256: Mapped[str] = mapped_column(String(71))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(200))

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    device_serial: Mapped[str] = mapped_column(String(64), index=True)
    officer_no: Mapped[str | None] = mapped_column(String(32), index=True)
    officer_name: Mapped[str | None] = mapped_column(String(200))
    original_path: Mapped[str] = mapped_column(String(1024))
    original_name: Mapped[str] = mapped_column(String(255))
    device_mtime: Mapped[datetime | None]

    # when, according to the file name and according to the container
    name_started_at: Mapped[datetime | None] = mapped_column(index=True)
    name_ended_at: Mapped[datetime | None]
    container_started_at: Mapped[datetime | None]
    container_ended_at: Mapped[datetime | None]

    # media facts from ffprobe
    probe_state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed|not_media
    duration_s: Mapped[float | None]
    codec: Mapped[str | None] = mapped_column(String(32))
    width: Mapped[int | None]
    height: Mapped[int | None]
    frame_rate: Mapped[float | None]
    container_format: Mapped[str | None] = mapped_column(String(64))
    container_created_at: Mapped[datetime | None]
    encoder: Mapped[str | None] = mapped_column(String(200))
    probe: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # fixity: the stored bytes re-read and checked against both fingerprints on a schedule
    fixity_state: Mapped[str] = mapped_column(
        String(16), default="unchecked", server_default="unchecked"
    )  # unchecked|ok|failed|missing
    fixity_checked_at: Mapped[datetime | None]

    # custody times
    docked_at: Mapped[datetime]
    copied_at: Mapped[datetime | None]
    uploaded_at: Mapped[datetime]
    verified_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
