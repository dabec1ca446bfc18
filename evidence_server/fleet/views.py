"""What the station page shows: each collection workstation a user may watch, with its newest dockings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Unit, User
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer

RECENT_TRANSFERS = 10


@dataclass
class StationView:
    station: Station
    unit: Unit | None
    transfers: list[Transfer]


def station_views(session: Session, user: User, recent: int = RECENT_TRANSFERS) -> list[StationView]:
    """The stations this user may watch (their unit's, or all), each with its newest dockings first."""
    q = select(Station).order_by(Station.name)
    if not user.sees_all_units:
        q = q.where(Station.unit_id == user.unit_id)
    units = {u.id: u for u in session.scalars(select(Unit))}
    views = []
    for station in session.scalars(q):
        transfers = session.scalars(
            select(Transfer)
            .where(Transfer.station_id == station.id)
            .order_by(Transfer.docked_at.desc(), Transfer.received_at.desc())
            .limit(recent)
        ).all()
        views.append(StationView(station, units.get(station.unit_id), list(transfers)))
    return views
