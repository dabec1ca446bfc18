from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class DockPort(Base):
    """One port of a station (a volume folder, a USB recorder) and its last reported state.

    A failed dock stays ``failed``, with its reason and the advice for the person at the station,
    until the station reports the port again (docked anew, or emptied).
    """

    __tablename__ = "dock_ports"
    __table_args__ = (UniqueConstraint("station_id", "port", name="uq_dock_ports_station_port"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    port: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    advice: Mapped[str | None] = mapped_column(String(32))
    device_serial: Mapped[str | None] = mapped_column(String(64))
    transfer_id: Mapped[str | None] = mapped_column(String(36))
    attempt: Mapped[int | None]
    since: Mapped[datetime] = mapped_column(default=utcnow)  # when it entered this state
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
