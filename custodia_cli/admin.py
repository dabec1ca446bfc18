"""Administration commands that work directly on the configured database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Unit, User
from evidence_server.accounts.secrets import generate_password
from evidence_server.config import get_settings
from evidence_server.context import ServerContext
from evidence_server.stations import service as stations


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
        issued = stations.create_station(
            session, name=name, unit_id=_unit(session, unit_code).id, code_hours=ctx.settings.enrolment_code_hours
        )
        session.commit()
        return {"station_id": issued.station.id, "enrolment_code": issued.code, "expires_at": issued.expires_at}
