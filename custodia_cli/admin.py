"""Administration commands that work directly on the configured database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Unit, User
from evidence_server.accounts.secrets import generate_password
from evidence_server.audit.service import record as audit
from evidence_server.config import get_settings
from evidence_server.context import ServerContext
from evidence_server.stations import service as stations
from evidence_server.stations.models import Station


def _ctx() -> ServerContext:
    return ServerContext(get_settings())


def _unit(session: Any, code: str) -> Unit:
    unit: Unit | None = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise SystemExit(f"no unit with code {code!r}: create it with `custodia admin create-unit`")
    return unit


def create_unit(code: str, name: str) -> dict[str, Any]:
    with _ctx().sessionmaker() as session:
        unit = accounts.ensure_unit(session, code, name)
        session.commit()
        return {"id": unit.id, "code": unit.code, "name": unit.name}


def create_user(
    *, username: str, role: str, unit_code: str, officer_no: str | None, display_name: str | None, password: str | None
) -> dict[str, Any]:
    generated = password is None
    password = password or generate_password()
    with _ctx().sessionmaker() as session:
        user = accounts.create_user(
            session,
            username=username,
            password=password,
            role=role,
            unit=_unit(session, unit_code),
            display_name=display_name,
            officer_no=officer_no,
        )
        session.commit()
        out: dict[str, Any] = {"id": user.id, "username": username, "role": role}
        if generated:
            out["password"] = password
        return out


def set_password(username: str) -> dict[str, Any]:
    password = generate_password()
    with _ctx().sessionmaker() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise SystemExit(f"no user {username!r}")
        # a new password also lifts a lockout and ends every login session: whoever knew the old one is out
        ended = accounts.set_password(session, user, password)
        session.commit()
    return {"username": username, "password": password, "sessions_ended": ended}


def create_station(name: str, unit_code: str) -> dict[str, Any]:
    ctx = _ctx()
    with ctx.sessionmaker() as session:
        unit = _unit(session, unit_code)
        try:
            issued = stations.create_station(
                session, name=name, unit_id=unit.id, code_hours=ctx.settings.enrolment_code_hours
            )
        except stations.StationError as exc:
            raise SystemExit(f"{exc.message} (`custodia admin reenrol-station {name} --unit {unit_code}`)") from exc
        audit(
            session,
            "station.created",
            object_type="station",
            object_id=issued.station.id,
            details={"name": name, "unit_id": unit.id, "via": "cli"},
        )
        session.commit()
        return {"station_id": issued.station.id, "enrolment_code": issued.code, "expires_at": issued.expires_at}


def reenrol_station(name: str, unit_code: str, reason: str) -> dict[str, Any]:
    """A new enrolment code for an existing station of the unit (its current token ends when the code is used)."""
    ctx = _ctx()
    with ctx.sessionmaker() as session:
        unit = _unit(session, unit_code)
        station = session.scalar(select(Station).where(Station.unit_id == unit.id, Station.name == name))
        if station is None:
            raise SystemExit(f"unit {unit_code} has no station named {name!r}")
        issued = stations.reenrol(session, station, ctx.settings.enrolment_code_hours)
        audit(
            session,
            "station.reenrolment_issued",
            object_type="station",
            object_id=station.id,
            details={"name": name, "unit_id": unit.id, "reason": reason, "via": "cli"},
        )
        session.commit()
        return {"station_id": station.id, "enrolment_code": issued.code, "expires_at": issued.expires_at}
