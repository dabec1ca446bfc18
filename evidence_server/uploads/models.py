from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class Upload(Base):
    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    length: Mapped[int] = mapped_column(BigInteger)
    declared_blake3: Mapped[str] = mapped_column(String(71))
    declared_sha256: Mapped[str] = mapped_column(String(71))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    # receiving | verified | rejected | terminated | superseded | expired | lost
    state: Mapped[str] = mapped_column(String(16), default="receiving")
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


def receiving() -> sa.ColumnElement[bool]:
    """An upload not finished: its state written into the statement rather than bound, so that PostgreSQL
    reads the partial index of unfinished uploads (``ix_uploads_receiving``, migration 0031) in a cached
    generic plan too. Without it, counting a station's open uploads at each upload's creation read every
    upload the station ever made: 148 ms at 2M uploads."""
    return Upload.state == sa.bindparam("receiving", "receiving", literal_execute=True)


class IntegrityIncident(Base):
    """Bytes that did not match what was declared or stored: for legal-affairs review."""

    __tablename__ = "integrity_incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # upload_digest_mismatch | fixity_mismatch | ...
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    upload_id: Mapped[str | None] = mapped_column(String(32))
    transfer_id: Mapped[str | None] = mapped_column(String(36))
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
