"""Push accounts, the recordings they deliver (one container each), their objects, refusals, GNSS tracks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class PushAccount(Base):
    """A Swift account for one body-worn system of a unit; it delivers through its own station row."""

    __tablename__ = "push_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]


class PushUser(Base):
    """An object in the account's ``Users/`` container: the system's user UUID mapped to an officer."""

    __tablename__ = "push_users"
    __table_args__ = (UniqueConstraint("account_id", "uuid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("push_accounts.id"), index=True)
    uuid: Mapped[str] = mapped_column(String(100))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    officer_no: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PushDevice(Base):
    """An object in the account's ``Devices/`` container: a recorder of the unit's register."""

    __tablename__ = "push_devices"
    __table_args__ = (UniqueConstraint("account_id", "serial"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("push_accounts.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PushContainer(Base):
    """A recording container (``<userid>_<deviceid>_<date>_<time>``); its clips arrive as one transfer."""

    __tablename__ = "push_containers"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("push_accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"))
    device_serial: Mapped[str] = mapped_column(String(64))
    officer_no: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="Transferring")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


class PushObject(Base):
    """One object of a recording container: a clip (held as a recording), a bookmark, a track, a key file."""

    __tablename__ = "push_objects"
    __table_args__ = (UniqueConstraint("container_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    container_id: Mapped[int] = mapped_column(ForeignKey("push_containers.id"), index=True)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))  # clip | bookmark | track | key | other
    md5: Mapped[str | None] = mapped_column(String(32))  # the sender's ETag, checked on receipt
    size: Mapped[int | None] = mapped_column(BigInteger)
    upload_id: Mapped[str | None] = mapped_column(String(32))  # the upload receiving a clip now
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"), index=True)
    content: Mapped[str | None] = mapped_column(Text)  # bookmarks, tracks, key files: small text
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="receiving")  # receiving | stored
    received_at: Mapped[datetime | None]


class PushRefusal(Base):
    """Something a push account sent that could not be taken (unknown user or device, another unit's
    device, a wrong ETag): shown to the unit's device administrator."""

    __tablename__ = "push_refusals"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("push_accounts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500))
    path: Mapped[str] = mapped_column(String(1024))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Track(Base):
    """A GNSS track: from a push container (Axis JSON) or a docked recorder's NMEA/GPX sidecar."""

    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    container_id: Mapped[int | None] = mapped_column(ForeignKey("push_containers.id"), index=True)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # axis-json | nmea | gpx
    name: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    points: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
