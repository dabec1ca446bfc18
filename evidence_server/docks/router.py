"""The station reports its ports' states; people read the busy and failed ports and the refused files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from evidence_server.accounts.models import Role, User
from evidence_server.db import SessionDep
from evidence_server.docks import service
from evidence_server.security import CurrentStation, require_roles

router = APIRouter(prefix="/api/v1", tags=["docks"])
Watcher = Annotated[
    User,
    Depends(require_roles(Role.officer, Role.device_admin, Role.legal_affairs, Role.auditor, Role.sysadmin)),
]


class PortIn(BaseModel):
    port: str = Field(min_length=1, max_length=255)
    state: Literal["settling", "retrying", "transferring", "done", "waiting", "failed", "empty"]
    reason: str | None = Field(default=None, max_length=500)
    advice: Literal["redock", "call_admin", "wait"] | None = None
    device_serial: str | None = Field(default=None, max_length=64)
    transfer_id: str | None = Field(default=None, max_length=36)
    attempt: int | None = Field(default=None, ge=0, le=1000)


class PortOut(BaseModel):
    station_id: int
    station_name: str
    port: str
    state: str
    reason: str | None
    advice: str | None
    device_serial: str | None
    transfer_id: str | None
    since: datetime
    updated_at: datetime


class RefusedOut(BaseModel):
    transfer_id: str
    device_serial: str
    officer_no: str | None
    docked_at: datetime
    path: str
    reason: str


@router.post("/stations/me/ports", status_code=204)
def report_port(body: PortIn, request: Request, station: CurrentStation, session: SessionDep) -> Response:
    """A port's state: settling, retrying, transferring, done, waiting, failed (with reason and advice), empty."""
    service.report_port(session, station, service.PortReport(**body.model_dump()))
    session.commit()
    return Response(status_code=204)


@router.get("/docks/ports", response_model=list[PortOut])
def active_ports(user: Watcher, session: SessionDep, failed_only: bool = False) -> list[PortOut]:
    """The ports of the stations the caller sees (their unit's, or all for supervisors) that hold a
    recorder or held one lately: failed first, then busy, then done."""
    views = service.active_ports(session, user=user, states=(*service.ACTIVE_STATES, "done"))
    return [
        PortOut(
            station_id=v.station.id,
            station_name=v.station.name,
            port=v.port.port,
            state=v.port.state,
            reason=v.port.reason,
            advice=v.port.advice,
            device_serial=v.port.device_serial,
            transfer_id=v.port.transfer_id,
            since=v.port.since,
            updated_at=v.port.updated_at,
        )
        for v in views
        if not failed_only or v.port.state == "failed"
    ]


@router.get("/docks/refused", response_model=list[RefusedOut])
def refused(user: Watcher, session: SessionDep, days: int = 30) -> list[RefusedOut]:
    """Files recorders held that stations refused, with the reason (officers: their own docks)."""
    return [
        RefusedOut(
            transfer_id=r.transfer.id,
            device_serial=r.transfer.device_serial,
            officer_no=r.transfer.officer_no,
            docked_at=r.transfer.docked_at,
            path=r.path,
            reason=r.reason,
        )
        for r in service.refused_files(session, user, days=max(1, min(days, 366)))
    ]
