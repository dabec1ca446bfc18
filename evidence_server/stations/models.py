from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class Station(Base):
    __tablename__ = "stations"
    __table_args__ = (UniqueConstraint("unit_id", "name", name="uq_stations_unit_id_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # after a rotation the old token keeps working until the new one is first used (or the grace ends),
    # so a station that crashed before saving its new token is not locked out
    previous_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_token_expires_at: Mapped[datetime | None]
    token_rotated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enrolled_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    hostname: Mapped[str | None] = mapped_column(String(255))
    heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EnrolmentCode(Base):
    """A one-time code a station exchanges for its token; only its hash is stored."""

    __tablename__ = "enrolment_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class StationUnit(Base):
    """A unit besides its own whose devices a station may take in (a shared station at a joint inspection
    point), granted by a system administrator."""

    __tablename__ = "station_units"
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class EndedStationToken(Base):
    """A station token that stopped working, and why: the station presenting it is told (re-enrolled
    elsewhere, replaced by a rotation) instead of a bare "unknown token". Only its hash is stored."""

    __tablename__ = "ended_station_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))  # reenrolled | rotated
    ended_at: Mapped[datetime] = mapped_column(default=utcnow)


def token_digest(hash_of_token: str | None) -> str | None:
    """What the log records of a station token: a digest of its stored hash (the token itself is never kept,
    and its hash is not written into the log either)."""
    if hash_of_token is None:
        return None
    return hashlib.sha256(b"custodia station token\x00" + hash_of_token.encode()).hexdigest()[:32]


#: what a station's row decides, as the log records it (``details.station`` of every ``station.*`` entry that
#: changes it): its unit (whose recorders it takes in), its name, whether it is revoked, and which token opens
#: it: its current one and, after a rotation, the one still in grace
STATION_EVIDENCE = ("name", "unit_id", "revoked", "token", "previous_token")


def station_evidence(station: Station) -> dict[str, Any]:
    return {
        "name": station.name,
        "unit_id": station.unit_id,
        "revoked": station.revoked_at is not None,
        "token": token_digest(station.token_hash),
        "previous_token": token_digest(station.previous_token_hash),
    }
