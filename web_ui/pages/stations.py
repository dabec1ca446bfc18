"""The station page: each collection workstation, its heartbeat and its recent dockings, live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from evidence_server.accounts.models import User
from evidence_server.db import SessionDep
from evidence_server.docks.service import ports_by_station
from evidence_server.fleet.views import station_views
from evidence_server.security import require_roles
from web_ui.nav import STATION_VIEWERS
from web_ui.render import render

router = APIRouter(include_in_schema=False)
StationViewer = Annotated[User, Depends(require_roles(*STATION_VIEWERS))]
REFRESH_MS = 2000


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
