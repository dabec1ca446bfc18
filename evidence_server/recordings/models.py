from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow

#: Fixity states in which the stored bytes are no longer the evidence that was ingested (``disposed``:
#: removed on an approved disposal, see evidence_server/retention; the record and fingerprints stay).
FIXITY_BAD = frozenset({"failed", "missing", "disposed"})
#: the same, as SQL: the scheduled jobs' partial indexes (migration 0027) are over the other states
FIXITY_SOUND_SQL = "fixity_state NOT IN ('disposed', 'failed', 'missing')"
#: The stored copy is damaged or gone (not disposed of on purpose): it is not custody. Such a recording
#: is never reported as held or confirmed in a receipt; a fresh upload of its bytes repairs it.
DAMAGED = frozenset({"failed", "missing"})


def fixity_sound() -> sa.ColumnElement[bool]:
    """``fixity_state`` not one of ``FIXITY_BAD``, the states written into the statement rather than bound,
    so that PostgreSQL matches it to the partial indexes over ``FIXITY_SOUND_SQL`` in a cached generic plan
    too (a driver prepares a statement it runs often)."""
    return Recording.fixity_state.not_in(
        sa.bindparam("fixity_bad", sorted(FIXITY_BAD), expanding=True, literal_execute=True)
    )


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_device_path", "device_serial", "original_path"),
        # the newest probed recordings, from which a family's media profile is learnt (compliance.gather):
        # without it, a family none of whose recordings is probed yet had every recording read on each scan
        Index(
            "ix_recordings_profiled",
            "id",
            postgresql_where=sa.text("media_profile IS NOT NULL"),
            sqlite_where=sa.text("media_profile IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    blake3: Mapped[str] = mapped_column(String(71), unique=True)  # "blake3:<hex>"
    sha256: Mapped[str] = mapped_column(String(71))
    #: "sm3:<hex>" (GB/T 32905), computed by the server on receipt; None for a recording stored before
    #: SM3 was computed until the backfill (evidence_server/custody/sm3.py) has read it
    sm3: Mapped[str | None] = mapped_column(String(68))
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
    media_profile: Mapped[dict[str, str] | None] = mapped_column(JSON)  # media.profile.profile_of(probe)

    # fixity: the stored bytes re-read and checked against both fingerprints on a schedule
    fixity_state: Mapped[str] = mapped_column(
        String(16), default="unchecked", server_default="unchecked"
    )  # unchecked|ok|failed|missing
    fixity_checked_at: Mapped[datetime | None]
    #: root of the block map (evidence_server/storage/blockmap.py), also in the recording.verified entry
    block_map_root: Mapped[str | None] = mapped_column(String(71))

    # the important mark (重要文件标记): set by the recorder (``source`` "device", ``how`` it marked it) or by a
    # person (``source`` "person", ``by``); kept until reviewed (retention: evidence_server/recordings/important.py)
    important: Mapped[bool] = mapped_column(default=False, server_default=sa.false(), index=True)
    important_source: Mapped[str | None] = mapped_column(String(16))  # device|person
    important_how: Mapped[str | None] = mapped_column(String(16))  # device: custodia_wire IMPORTANT_HOW
    important_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    important_at: Mapped[datetime | None]
    important_note: Mapped[str | None] = mapped_column(String(1000))
    important_reviewed_at: Mapped[datetime | None]
    important_reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # custody times
    docked_at: Mapped[datetime]
    copied_at: Mapped[datetime | None]
    uploaded_at: Mapped[datetime]
    verified_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordingBlockMap(Base):
    """The BLAKE3 of each fixed-size block of a recording's bytes: a byte range is checked alone."""

    __tablename__ = "recording_block_maps"
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), primary_key=True)
    block_size: Mapped[int]
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(71))
    hashes: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))  # receipt | backfill
    made_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sighting(Base):
    """A device, a path on it and a transfer where a recording's bytes were delivered and verified.

    The same bytes may come from several recorders (a segment copied to a second one, an empty file):
    each delivery is a sighting, and a custody event of its own (audit ``recording.sighted``). Only a
    device with a sighting of a recording may have it reported as held or confirmed in its receipts.
    """

    __tablename__ = "sightings"
    __table_args__ = (
        UniqueConstraint("transfer_id", "path", name="uq_sightings_transfer_path"),
        Index("ix_sightings_device_path", "device_serial", "path"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    device_serial: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    upload_id: Mapped[str | None] = mapped_column(String(32))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
