"""The fleet page: every station's health at a glance (last seen, spool backlog, free disk, alerts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from evidence_server.accounts.models import User
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep, utcnow
from evidence_server.docks.service import failed_ports
from evidence_server.fleet.rules import FleetRules
from evidence_server.fleet.service import fleet_health
from evidence_server.security import require_roles
from web_ui.nav import FLEET_VIEWERS
from web_ui.render import render

router = APIRouter(include_in_schema=False)
FleetViewer = Annotated[User, Depends(require_roles(*FLEET_VIEWERS))]


@router.get("/fleet")
def fleet_page(request: Request, ctx: CtxDep, user: FleetViewer, session: SessionDep) -> Response:
    rules = FleetRules.from_settings(ctx.settings)
    health = fleet_health(session, rules, unit_id=None if user.sees_all_units else user.unit_id, now=utcnow())
    alerting = [h for h in health if h.alerts]
    failed = failed_ports(session, user=user)
    return render(
        request,
        "fleet.html",
        user=user,
        health=health,
        alerting=alerting,
        failed=failed,
        failed_stations={v.station.id for v in failed},
        rules=rules,
        window_minutes=int(rules.growth_window.total_seconds() // 60),
        silent_minutes=int(rules.silent_after.total_seconds() // 60),
    )
