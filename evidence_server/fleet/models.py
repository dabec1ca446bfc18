from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base


class StationHeartbeat(Base):
    """One heartbeat of a station as it arrived: the history the fleet rules look at."""

    __tablename__ = "station_heartbeats"
    __table_args__ = (Index("ix_station_heartbeats_station_at", "station_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    at: Mapped[datetime]  # when the server received it (the station's own clock may be off)
    spool_bytes: Mapped[int | None] = mapped_column(BigInteger)
    free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    agent_version: Mapped[str | None] = mapped_column(String(50))
