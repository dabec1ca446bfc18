"""The station page: each collection workstation, its heartbeat and its recent dockings, live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Unit, User
from evidence_server.db import SessionDep
from evidence_server.docks.service import ports_by_station
from evidence_server.security import require_roles
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer
from web_ui.nav import STATION_VIEWERS
from web_ui.render import render

router = APIRouter(include_in_schema=False)
StationViewer = Annotated[User, Depends(require_roles(*STATION_VIEWERS))]
RECENT_TRANSFERS = 10
REFRESH_MS = 2000


@dataclass
class StationView:
    station: Station
    unit: Unit | None
    transfers: list[Transfer]


def station_views(session: Session, user: User) -> list[StationView]:
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
            .limit(RECENT_TRANSFERS)
        ).all()
        views.append(StationView(station, units.get(station.unit_id), list(transfers)))
    return views


@router.get("/stations")
def stations_page(request: Request, user: StationViewer, session: SessionDep) -> Response:
    views = station_views(session, user)
    return render(
        request,
        "stations.html",
        user=user,
        stations=views,
        ports=ports_by_station(session, [v.station.id for v in views]),
        refresh_url="/stations/live",
        refresh_ms=REFRESH_MS,
    )


@router.get("/stations/live")
def stations_fragment(request: Request, user: StationViewer, session: SessionDep) -> Response:
    """The live part of the station page, fetched every few seconds by ``static/custodia.js``."""
    views = station_views(session, user)
    ports = ports_by_station(session, [v.station.id for v in views])
    return render(request, "_stations_live.html", user=user, stations=views, ports=ports)
