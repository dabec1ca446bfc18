"""Administration actions, shared by the pages, the HTTP API and the command line; each one audited.

``actor`` is the user doing it (None for the command line, audited as the system). Callers commit.
Passwords are generated here and returned once; only their hashes are stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import USER_EVIDENCE, LoginSession, Role, Unit, User
from evidence_server.accounts.secrets import generate_password
from evidence_server.admin import rules
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.service import record as audit
from evidence_server.db import utcnow
from evidence_server.stations import service as stations
from evidence_server.stations.models import Station, station_evidence

UNIT_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
USERNAME = re.compile(r"^[\w.\-]{1,64}$")
STATION_NAME = re.compile(r"^[\w.\- ]{1,100}$")


class AdminError(Exception):
    """An action refused: ``status`` is the HTTP status it maps to (403, 404, 409, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _who(user: User) -> rules.Who:
    return rules.Who(user.id, Role(user.role), user.unit_id)


def _require_admin(actor: User | None) -> None:
    if actor is not None and Role(actor.role) not in rules.ADMINS:
        raise AdminError(403, "administration is for system and device administrators")


def _unit_in_reach(session: Session, actor: User | None, unit_id: int) -> Unit:
    """The unit by id, if ``actor`` may act in it: another unit answers exactly as one that does not exist."""
    unit = session.get(Unit, unit_id) if actor is None else accounts.unit_in_reach(session, actor, unit_id)
    if unit is None:
        raise AdminError(422, "no such unit")
    _unit_allowed(actor, unit_id)
    return unit


def _unit_allowed(actor: User | None, unit_id: int) -> None:
    if actor is not None and not rules.may_act_in_unit(_who(actor), unit_id):
        raise AdminError(403, "you administer only your own unit")


# --- units ------------------------------------------------------------------------------------


def units_visible(session: Session, actor: User) -> list[Unit]:
    q = select(Unit).order_by(Unit.code)
    if Role(actor.role) != Role.sysadmin:
        q = q.where(Unit.id == actor.unit_id)
    return list(session.scalars(q))


def create_unit(session: Session, actor: User | None, *, code: str, name: str, request: Request | None = None) -> Unit:
    if actor is not None and not rules.may_create_units(Role(actor.role)):
        raise AdminError(403, "only system administrators create units")
    code, name = code.strip(), name.strip()
    if not UNIT_CODE.fullmatch(code):
        raise AdminError(422, "a unit code is 1-32 letters, digits, '.', '_' or '-'")
    if not name or len(name) > 200:
        raise AdminError(422, "a unit needs a name of at most 200 characters")
    if session.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        raise AdminError(409, f"a unit with code {code!r} exists")
    unit = Unit(code=code, name=name)
    session.add(unit)
    session.flush()
    audit(
        session,
        "unit.created",
        request=request,
        actor=actor,
        object_type="unit",
        object_id=unit.id,
        details={"code": code, "name": name},
    )
    return unit


# --- users ------------------------------------------------------------------------------------


def users_visible(session: Session, actor: User) -> list[User]:
    q = select(User).order_by(User.unit_id, User.role, User.username)
    if Role(actor.role) != Role.sysadmin:
        q = q.where(User.unit_id == actor.unit_id)
    return list(session.scalars(q))


def find_user(session: Session, actor: User | None, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or (actor is not None and not rules.may_act_in_unit(_who(actor), user.unit_id)):
        raise AdminError(404, "no such user")
    return user


@dataclass(frozen=True)
class NewUser:
    user: User
    password: str | None  # the generated password, shown once; None when the caller chose it


def create_user(
    session: Session,
    actor: User | None,
    *,
    username: str,
    role: Role | str,
    unit_id: int,
    display_name: str | None = None,
    officer_no: str | None = None,
    password: str | None = None,
    request: Request | None = None,
) -> NewUser:
    _require_admin(actor)
    try:
        role = Role(role)
    except ValueError as exc:
        raise AdminError(422, f"no role {role!r}") from exc
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise AdminError(422, "a username is 1-64 letters, digits, '.', '_' or '-'")
    unit = _unit_in_reach(session, actor, unit_id)
    if actor is not None and role not in rules.assignable_roles(Role(actor.role)):
        raise AdminError(403, f"a {actor.role} cannot create a {role.value}")
    officer_no = (officer_no or "").strip() or None
    if role == Role.officer and not officer_no:
        raise AdminError(422, "an officer needs an officer number (警号)")
    generated = generate_password() if password is None else None
    try:
        user = accounts.create_user(
            session,
            username=username,
            password=password or generated or "",
            role=role,
            unit=unit,
            display_name=(display_name or "").strip()[:200] or None,
            officer_no=officer_no,
        )
    except accounts.WeakPassword as exc:  # the one password rule (length, common passwords)
        raise AdminError(422, str(exc)) from exc
    except accounts.AccountError as exc:
        raise AdminError(409, str(exc)) from exc
    audit(
        session,
        "user.created",
        request=request,
        actor=actor,
        object_type="user",
        object_id=user.id,
        details={
            "username": username,
            "role": role.value,
            "unit_id": unit.id,
            "officer_no": officer_no,
            "user": fields_of(user, USER_EVIDENCE),
        },
    )
    return NewUser(user, generated)


def _end_logins(session: Session, user: User) -> None:
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def set_active(
    session: Session, actor: User | None, user_id: int, active: bool, *, request: Request | None = None
) -> User:
    """Disable (every login of theirs ends at once) or enable a user."""
    _require_admin(actor)
    user = find_user(session, actor, user_id)
    if actor is not None:
        refused = rules.refuse_user_change(_who(actor), _who(user), disabling=not active)
        if refused:
            raise AdminError(403, refused)
    if user.active != active:
        user.active = active
        if not active:
            _end_logins(session, user)
        audit(
            session,
            "user.enabled" if active else "user.disabled",
            request=request,
            actor=actor,
            object_type="user",
            object_id=user.id,
            details={"username": user.username, "user": fields_of(user, USER_EVIDENCE)},
        )
    return user


def set_role(
    session: Session, actor: User | None, user_id: int, role: Role | str, *, request: Request | None = None
) -> User:
    _require_admin(actor)
    user = find_user(session, actor, user_id)
    new_role = Role(role)
    if actor is not None:
        refused = rules.refuse_user_change(_who(actor), _who(user), new_role=new_role)
        if refused:
            raise AdminError(403, refused)
    if user.role != new_role.value:
        old = user.role
        user.role = new_role.value
        _end_logins(session, user)  # a new role takes effect at the next login, with its new rights
        audit(
            session,
            "user.role_changed",
            request=request,
            actor=actor,
            object_type="user",
            object_id=user.id,
            details={
                "username": user.username,
                "from": old,
                "to": new_role.value,
                "user": fields_of(user, USER_EVIDENCE),
            },
        )
    return user


class Reset(NamedTuple):
    user: User
    password: str
    sessions_ended: int


def reset_password(
    session: Session,
    actor: User | None,
    user_id: int | None = None,
    *,
    username: str | None = None,
    request: Request | None = None,
) -> Reset:
    """A new generated password (returned once); lifts a lockout and ends the user's logins."""
    _require_admin(actor)
    if username is not None:
        found = session.scalar(select(User).where(User.username == username))
        if found is None:
            raise AdminError(404, f"no user {username!r}")
        user_id = found.id
    if user_id is None:
        raise AdminError(422, "which user?")
    user = find_user(session, actor, user_id)
    if actor is not None:
        refused = rules.refuse_user_change(_who(actor), _who(user))
        if refused:
            raise AdminError(403, refused)
    password = generate_password()
    ended = accounts.set_password(session, user, password)  # the one way a password changes
    audit(
        session,
        "user.password_reset",
        request=request,
        actor=actor,
        object_type="user",
        object_id=user.id,
        details={"username": user.username, "sessions_ended": ended, "user": fields_of(user, USER_EVIDENCE)},
    )
    return Reset(user, password, ended)


# --- stations ---------------------------------------------------------------------------------


def stations_visible(session: Session, actor: User) -> list[Station]:
    q = select(Station).order_by(Station.name)
    if Role(actor.role) != Role.sysadmin:
        q = q.where(Station.unit_id == actor.unit_id)
    return list(session.scalars(q))


def find_station(session: Session, actor: User | None, station_id: int) -> Station:
    station = session.get(Station, station_id)
    if station is None or (actor is not None and not rules.may_act_in_unit(_who(actor), station.unit_id)):
        raise AdminError(404, "no such station")
    return station


@dataclass(frozen=True)
class StationCode:
    station: Station
    code: str
    expires_at: datetime


def create_station(
    session: Session, actor: User | None, *, name: str, unit_id: int, code_hours: int, request: Request | None = None
) -> StationCode:
    """A new station and its one-time enrolment code (shown once)."""
    _require_admin(actor)
    name = name.strip()
    if not STATION_NAME.fullmatch(name):
        raise AdminError(422, "a station name is 1-100 letters, digits, spaces, '.', '_' or '-'")
    _unit_in_reach(session, actor, unit_id)
    try:  # names are unique within a unit (the same name in another unit is another station)
        issued = stations.create_station(session, name=name, unit_id=unit_id, code_hours=code_hours)
    except stations.StationError as exc:
        raise AdminError(exc.status, exc.message) from exc
    audit(
        session,
        "station.created",
        request=request,
        actor=actor,
        object_type="station",
        object_id=issued.station.id,
        details={"name": name, "unit_id": unit_id, "station": station_evidence(issued.station)},
    )
    return StationCode(issued.station, issued.code, issued.expires_at)


def issue_code(
    session: Session,
    actor: User | None,
    station_id: int,
    *,
    code_hours: int,
    replace: bool = False,
    request: Request | None = None,
) -> StationCode:
    """A new enrolment code; with ``replace`` the station's current credentials stop working at once
    (a workstation replaced or suspected compromised: it enrols again with the code)."""
    _require_admin(actor)
    station = find_station(session, actor, station_id)
    issued = (stations.replace_credentials if replace else stations.reenrol)(session, station, code_hours)
    audit(
        session,
        "station.credentials_replaced" if replace else "station.code_issued",
        request=request,
        actor=actor,
        object_type="station",
        object_id=station.id,
        details={"station": station_evidence(station)},
    )
    return StationCode(station, issued.code, issued.expires_at)


def revoke_station(session: Session, actor: User | None, station_id: int, *, request: Request | None = None) -> Station:
    _require_admin(actor)
    station = find_station(session, actor, station_id)
    if station.revoked_at is None:
        stations.revoke(session, station)
        audit(
            session,
            "station.revoked",
            request=request,
            actor=actor,
            object_type="station",
            object_id=station.id,
            details={"station": station_evidence(station)},
        )
    return station
