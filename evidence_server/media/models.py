"""The record of a derived file (a thumbnail, a proxy): what it was made from, how, and its own fingerprint.

Made by ``evidence_server.media.derive``; stored under ``derived/…`` in the object store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class DerivedMedia(Base):
    __tablename__ = "derived_media"
    __table_args__ = (UniqueConstraint("recording_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # thumbnail | proxy
    state: Mapped[str] = mapped_column(String(16))  # done | failed | not_needed
    source_blake3: Mapped[str] = mapped_column(String(71))  # the original it was made from
    storage_key: Mapped[str | None] = mapped_column(String(300))
    blake3: Mapped[str | None] = mapped_column(String(71))
    sha256: Mapped[str | None] = mapped_column(String(71))
    size: Mapped[int | None] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the ffmpeg command and version
    error: Mapped[str | None] = mapped_column(String(2000))
    made_at: Mapped[datetime] = mapped_column(default=utcnow)
