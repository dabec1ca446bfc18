from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.accounts.service import unit_in_reach
from evidence_server.audit import tally
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep, ServerContext
from evidence_server.db import SessionDep
from evidence_server.fleet import service as fleet
from evidence_server.security import CurrentStation, bearer_token, public, public_credentials, require_roles
from evidence_server.stations import service, serving
from evidence_server.stations.models import Station, station_evidence

router = APIRouter(prefix="/api/v1", tags=["stations"])
StationAdmin = Annotated[User, Depends(require_roles(*service.ADMINS))]


class StationIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.\- ]+$")
    unit_id: int


class ReenrolIn(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = Field(
        description="why the station is enrolled again (kept in the audit log)"
    )


class CodeOut(BaseModel):
    station_id: int
    enrolment_code: str
    expires_at: datetime


class EnrolIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    hostname: str | None = Field(default=None, max_length=255)


class EnrolOut(BaseModel):
    station_id: int
    station_name: str
    token: str
    server_public_key: str
    server_key_id: str


class KeyOut(BaseModel):
    public_key: str
    key_id: str
    algorithm: str = "Ed25519"


class HeartbeatIn(BaseModel):
    spool_bytes: int | None = Field(default=None, ge=0)
    free_bytes: int | None = Field(default=None, ge=0)
    agent_version: str | None = Field(default=None, max_length=50)
    station_time: datetime | None = None


class StationOut(BaseModel):
    id: int
    name: str
    unit_id: int
    enrolled_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None
    heartbeat: dict[str, Any] | None


def http_error(exc: service.StationError) -> HTTPException:
    return HTTPException(exc.status, {"code": exc.code, "message": exc.message})


@router.post("/stations", response_model=CodeOut, status_code=201)
def create_station(body: StationIn, request: Request, ctx: CtxDep, user: StationAdmin, session: SessionDep) -> CodeOut:
    """Register a new station in a unit and return its one-time enrolment code.

    A name the unit already uses is refused (409): a new code for an existing station is a
    re-enrolment, ``POST /stations/{id}/re-enrol``.
    """
    unit = unit_in_reach(session, user, body.unit_id)
    if unit is None:
        raise HTTPException(422, {"code": "unknown_unit", "message": f"no unit {body.unit_id} you administer"})
    try:
        issued = service.create_station(
            session, name=body.name, unit_id=unit.id, code_hours=ctx.settings.enrolment_code_hours
        )
    except service.StationError as exc:
        raise http_error(exc) from exc
    audit(
        session,
        "station.created",
        request=request,
        object_type="station",
        object_id=issued.station.id,
        details={"name": body.name, "unit_id": unit.id, "station": station_evidence(issued.station)},
    )
    session.commit()
    return CodeOut(station_id=issued.station.id, enrolment_code=issued.code, expires_at=issued.expires_at)


@router.post("/stations/{station_id}/re-enrol", response_model=CodeOut, status_code=201)
def reenrol_station(
    station_id: int, body: ReenrolIn, request: Request, ctx: CtxDep, user: StationAdmin, session: SessionDep
) -> CodeOut:
    """A new one-time enrolment code for an existing station (a replaced PC, a lost token).

    When the code is used, the station's current token stops working; a station still presenting it
    is told that it was enrolled again. Earlier unused codes of the station are void at once.
    """
    return _new_code(session, request, ctx, user, station_id, body.reason, service.reenrol, "reenrolment_issued")


@router.post("/stations/{station_id}/replace-credentials", response_model=CodeOut, status_code=201)
def replace_credentials(
    station_id: int, body: ReenrolIn, request: Request, ctx: CtxDep, user: StationAdmin, session: SessionDep
) -> CodeOut:
    """End the station's token now (a workstation replaced or suspected compromised) and issue a code to
    enrol it again; a station still presenting the old token is told its credentials were replaced."""
    return _new_code(
        session, request, ctx, user, station_id, body.reason, service.replace_credentials, "credentials_replaced"
    )


def _new_code(
    session: Session,
    request: Request,
    ctx: ServerContext,
    user: User,
    station_id: int,
    reason: str,
    issue: Callable[[Session, Station, int], service.IssuedCode],
    action: str,
) -> CodeOut:
    try:
        station = service.managed_station(session, user, station_id)
    except service.StationError as exc:
        raise http_error(exc) from exc
    issued = issue(session, station, ctx.settings.enrolment_code_hours)
    audit(
        session,
        f"station.{action}",
        request=request,
        object_type="station",
        object_id=station.id,
        details={
            "name": station.name,
            "unit_id": station.unit_id,
            "reason": reason,
            "station": station_evidence(station),
        },
    )
    session.commit()
    return CodeOut(station_id=station.id, enrolment_code=issued.code, expires_at=issued.expires_at)


@router.get("/stations", response_model=list[StationOut])
def list_stations(user: StationAdmin, session: SessionDep) -> list[Station]:
    return list(session.scalars(service.stations_managed(user).order_by(Station.unit_id, Station.name)))


@router.post("/stations/{station_id}/revoke", status_code=204)
def revoke_station(station_id: int, request: Request, user: StationAdmin, session: SessionDep) -> Response:
    try:
        station = service.managed_station(session, user, station_id)
    except service.StationError as exc:
        raise http_error(exc) from exc
    service.revoke(session, station)
    audit(
        session,
        "station.revoked",
        request=request,
        object_type="station",
        object_id=station.id,
        details={"station": station_evidence(station)},
    )
    session.commit()
    return Response(status_code=204)


@router.post(
    "/stations/enrol",
    response_model=EnrolOut,
    status_code=201,
    dependencies=[Depends(public_credentials)],
    responses={403: {"description": "unknown, used or expired enrolment code"}},
)
def enrol(body: EnrolIn, request: Request, ctx: CtxDep, session: SessionDep) -> EnrolOut:
    """Exchange a one-time enrolment code for this station's token (shown once)."""
    try:
        station, token, again = service.enrol(session, code=body.code, hostname=body.hostname)
    except service.EnrolmentError as exc:
        tally.record_failure(
            session,
            "station.enrol_failed",
            request=request,
            details={"reason": str(exc)},
            **tally.limits_of(ctx.settings),
        )
        session.commit()
        raise HTTPException(403, str(exc)) from exc
    audit(
        session,
        "station.reenrolled" if again else "station.enrolled",
        request=request,
        object_type="station",
        object_id=station.id,
        actor=station,
        details={"hostname": body.hostname, "previous_token_ended": again, "station": station_evidence(station)},
    )
    session.commit()
    return EnrolOut(
        station_id=station.id,
        station_name=station.name,
        token=token,
        server_public_key=ctx.public_key_b64,
        server_key_id=ctx.key_id,
    )


@router.post("/stations/me/heartbeat", status_code=204)
def heartbeat(
    body: HeartbeatIn, request: Request, ctx: CtxDep, station: CurrentStation, session: SessionDep
) -> Response:
    data = body.model_dump(mode="json")
    service.heartbeat(station, data)
    fleet.record_sample(session, station, data, keep_hours=ctx.settings.fleet_history_hours)
    session.commit()
    return Response(status_code=204)


class TokenOut(BaseModel):
    token: str
    previous_valid_until: datetime | None


@router.post("/stations/me/token", response_model=TokenOut, status_code=201)
def rotate_token(request: Request, ctx: CtxDep, station: CurrentStation, session: SessionDep) -> TokenOut:
    """Rotate this station's token: the new one is shown once; the old one works until the new one is used."""
    presented = bearer_token(request) or ""
    token = service.rotate_token(session, station, presented, ctx.settings.station_token_grace_hours)
    audit(
        session,
        "station.token_rotated",
        request=request,
        object_type="station",
        object_id=station.id,
        details={"station": station_evidence(station)},
    )
    session.commit()
    return TokenOut(token=token, previous_valid_until=station.previous_token_expires_at)


@router.get("/server-key", response_model=KeyOut, dependencies=[Depends(public)])
def server_key(request: Request, ctx: CtxDep) -> KeyOut:
    return KeyOut(public_key=ctx.public_key_b64, key_id=ctx.key_id)


# --- units a shared station serves besides its own (system administrators only) ----------------------

SystemAdmin = Annotated[User, Depends(require_roles(Role.sysadmin))]


class ServedOut(BaseModel):
    station_id: int
    unit_id: int
    serves: list[int]


def _station(session: SessionDep, station_id: int) -> Station:
    station = session.get(Station, station_id)
    if station is None:
        raise HTTPException(404, "no such station")
    return station


def _served(session: SessionDep, station: Station) -> ServedOut:
    return ServedOut(station_id=station.id, unit_id=station.unit_id, serves=serving.served_units(session, station))


@router.get("/stations/{station_id}/units", response_model=ServedOut)
def station_units(station_id: int, user: SystemAdmin, session: SessionDep) -> ServedOut:
    """The units whose devices this station takes in besides its own."""
    return _served(session, _station(session, station_id))


@router.put("/stations/{station_id}/units/{unit_id}", response_model=ServedOut)
def grant_unit(station_id: int, unit_id: int, request: Request, user: SystemAdmin, session: SessionDep) -> ServedOut:
    """Let a shared station (a joint inspection point) take in the devices of another unit."""
    station = _station(session, station_id)
    try:
        serving.grant(session, user, station, unit_id, request)
    except serving.ServingError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    session.commit()
    return _served(session, station)


@router.delete("/stations/{station_id}/units/{unit_id}", response_model=ServedOut)
def withdraw_unit(station_id: int, unit_id: int, request: Request, user: SystemAdmin, session: SessionDep) -> ServedOut:
    station = _station(session, station_id)
    serving.withdraw(session, station, unit_id, request)
    session.commit()
    return _served(session, station)
