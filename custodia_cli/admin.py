"""Administration commands that work directly on the configured database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import OperationalError

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Unit
from evidence_server.admin import service as admin
from evidence_server.audit.service import record as audit
from evidence_server.config import get_settings
from evidence_server.context import ServerContext
from evidence_server.stations import service as stations
from evidence_server.stations.models import Station, station_evidence


def _has_schema(ctx: ServerContext) -> bool:
    """Is there a migrated database (without creating an empty SQLite file where none was)?"""
    settings = ctx.settings
    if settings.is_sqlite:
        path = settings.database_url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).is_file():
            return False
    try:
        return inspect(ctx.engine).has_table("users")
    except OperationalError:
        return False


def _ctx() -> ServerContext:
    """The configured server, refused with a clear message when its database was never made."""
    ctx = ServerContext(get_settings())
    if not _has_schema(ctx):
        url = ctx.settings.database_url
        ctx.close()
        raise SystemExit(
            f"no Custodia database at {url}.\n"
            "Start Custodia once with `scripts/up` (or `custodia up`), which makes it and writes var/custodia.env; "
            "from another folder, name that file with `custodia --settings PATH ...`. "
            "For a configured deployment, run `custodia db upgrade` first."
        )
    return ctx


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
    """A user made as the pages make one (audited, as the system); a generated password is printed once."""
    with _ctx().sessionmaker() as session:
        try:
            made = admin.create_user(
                session,
                None,
                username=username,
                role=role,
                unit_id=_unit(session, unit_code).id,
                display_name=display_name,
                officer_no=officer_no,
                password=password,
            )
        except admin.AdminError as exc:
            raise SystemExit(f"not created: {exc.message}") from exc
        session.commit()
        out: dict[str, Any] = {"id": made.user.id, "username": username, "role": role}
        if made.password is not None:
            out["password"] = made.password
        return out


def set_password(username: str) -> dict[str, Any]:
    """A new generated password (printed once); lifts a lockout, ends the user's logins; audited."""
    with _ctx().sessionmaker() as session:
        try:
            user, password, ended = admin.reset_password(session, None, username=username)
        except admin.AdminError as exc:
            raise SystemExit(exc.message) from exc
        session.commit()
        return {"username": user.username, "password": password, "sessions_ended": ended}


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
            details={"name": name, "unit_id": unit.id, "via": "cli", "station": station_evidence(issued.station)},
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


def push_connection_file(name: str, unit_code: str, base_url: str) -> dict[str, Any]:
    """A push account for a unit's body-worn system, and the connection file its manager imports."""
    from evidence_server.push import service as push

    ctx = _ctx()
    with ctx.sessionmaker() as session:
        unit = _unit(session, unit_code)
        new = push.create_account(session, unit_id=unit.id, name=name, by=None, request=None)
        conn = push.connection_file_for(session, new, base_url)
        session.commit()
    ctx.close()
    return conn
