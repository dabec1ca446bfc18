"""Stations on the database: registration in a unit, enrolment, re-enrolment, rotation, revocation.

A station's identity is its enrolment: whoever exchanges a one-time code holds the station's token.
So issuing a code for a station that exists is an explicit re-enrolment (``reenrol``), never a side
effect of naming it, and only its own unit's administrators (or a system administrator) may do it.
A token that stops working is remembered with the reason, so the station is told why.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.accounts.secrets import STATION_TOKEN_PREFIX, new_token, token_hash
from evidence_server.db import utcnow
from evidence_server.stations.models import EndedStationToken, EnrolmentCode, Station

#: who registers, re-enrols and revokes stations (device administrators: their own unit's)
ADMINS: tuple[Role, ...] = (Role.device_admin, Role.sysadmin)


class EnrolmentError(Exception):
    pass


class StationError(Exception):
    """A station rule refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class IssuedCode:
    station: Station
    code: str
    expires_at: datetime


# --- which stations an administrator may touch ------------------------------------------------------


def stations_managed(user: User) -> Select[Station]:
    """The stations ``user`` administers: a system administrator's are all, a device administrator's
    their unit's, anyone else's none."""
    q = select(Station)
    if Role(user.role) == Role.sysadmin:
        return q
    if Role(user.role) == Role.device_admin:
        return q.where(Station.unit_id == user.unit_id)
    return q.where(Station.id.is_(None))


def managed_station(session: Session, user: User, station_id: int) -> Station:
    """The station ``user`` administers; another unit's answers exactly as one that does not exist."""
    station: Station | None = session.scalar(stations_managed(user).where(Station.id == station_id))
    if station is None:
        raise StationError("unknown_station", f"no station {station_id}, or not one you administer", 404)
    return station


# --- registration and codes -------------------------------------------------------------------------


def create_station(session: Session, *, name: str, unit_id: int, code_hours: int) -> IssuedCode:
    """Register a new station in a unit and issue its first enrolment code.

    A name already used in the unit is refused: giving an existing station a new enrolment is
    ``reenrol``, an explicit and audited act. The same name in another unit is another station.
    """
    taken = session.scalar(select(Station.id).where(Station.unit_id == unit_id, Station.name == name))
    if taken is not None:
        raise StationError(
            "station_exists",
            f"your unit has a station named {name!r} (id {taken}); to enrol it again, re-enrol it explicitly",
            409,
        )
    station = Station(name=name, unit_id=unit_id)
    session.add(station)
    session.flush()
    return issue_code(session, station, code_hours)


def reenrol(session: Session, station: Station, code_hours: int) -> IssuedCode:
    """A new enrolment code for an existing station (a replaced PC, a lost token, an expired code).

    The station's current token works until the code is used; then it stops, and the station that
    still presents it is told it was enrolled again.
    """
    return issue_code(session, station, code_hours)


def replace_credentials(session: Session, station: Station, code_hours: int) -> IssuedCode:
    """End the station's token now (a workstation replaced or suspected compromised) and issue a code to
    enrol it again; the station presenting the old token is told its credentials were replaced."""
    _end_token(session, station, station.token_hash, "replaced")
    _end_token(session, station, station.previous_token_hash, "replaced")
    station.token_hash = None
    station.previous_token_hash = station.previous_token_expires_at = None
    station.enrolled_at = None
    return issue_code(session, station, code_hours)


def issue_code(session: Session, station: Station, code_hours: int) -> IssuedCode:
    """A one-time code for ``station``; codes issued before and not used are void from now on."""
    now = utcnow()
    session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.station_id == station.id, EnrolmentCode.used_at.is_(None), EnrolmentCode.expires_at > now)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))
    expires = now + timedelta(hours=code_hours)
    session.add(EnrolmentCode(station_id=station.id, code_hash=token_hash(code), expires_at=expires))
    session.flush()
    return IssuedCode(station, code, expires)


# --- enrolment, tokens ---------------------------------------------------------------------------------


def _end_token(session: Session, station: Station, digest: str | None, reason: str) -> None:
    """Remember that a token of ``station`` stopped working, and why."""
    if digest is None:
        return
    if session.scalar(select(EndedStationToken.id).where(EndedStationToken.token_hash == digest)) is None:
        session.add(EndedStationToken(station_id=station.id, token_hash=digest, reason=reason))


def enrol(session: Session, *, code: str, hostname: str | None) -> tuple[Station, str, bool]:
    """Exchange a one-time code for a station token; the previous token (if any) stops working.

    Returns the station, its new token, and whether it had been enrolled before (a re-enrolment).
    """
    row = session.scalar(select(EnrolmentCode).where(EnrolmentCode.code_hash == token_hash(code.strip())))
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise EnrolmentError("unknown, used or expired enrolment code")
    row.used_at = now
    station = session.get_one(Station, row.station_id)
    again = station.enrolled_at is not None
    _end_token(session, station, station.token_hash, "reenrolled")
    _end_token(session, station, station.previous_token_hash, "reenrolled")
    token = new_token(STATION_TOKEN_PREFIX)
    station.token_hash = token_hash(token)
    station.previous_token_hash = station.previous_token_expires_at = None
    station.enrolled_at = now
    station.revoked_at = None
    station.hostname = hostname
    return station, token, again


def revoke(session: Session, station: Station) -> None:
    station.revoked_at = utcnow()
    station.previous_token_hash = station.previous_token_expires_at = None


def station_for_token(session: Session, token: str) -> Station | None:
    """The enrolled, unrevoked station holding ``token``: its current one, or the one it had before its
    last rotation while that is still in grace. Using the current token ends the grace at once."""
    digest = token_hash(token)
    station = session.scalar(select(Station).where(Station.token_hash == digest))
    if station is not None:
        if station.previous_token_hash is not None:  # the new token is in use: the old one is done
            _end_token(session, station, station.previous_token_hash, "rotated")
            station.previous_token_hash = station.previous_token_expires_at = None
            session.commit()
    else:
        station = session.scalar(select(Station).where(Station.previous_token_hash == digest))
        expires = station.previous_token_expires_at if station is not None else None
        if station is None or expires is None or expires <= utcnow():
            return None
    return station if station.revoked_at is None else None


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


ASK_AGAIN = "ask a device administrator of your unit for a new enrolment code and run `custodia agent enrol CODE`"


def refusal(session: Session, token: str | None) -> tuple[str, str]:
    """Why ``token`` is not accepted, as (code, message) the station's operator can act on."""
    if not token or not token.startswith(STATION_TOKEN_PREFIX):
        return "station_token_required", "this route is for enrolled stations: send the station token"
    digest = token_hash(token)
    station = session.scalar(select(Station).where(Station.token_hash == digest))
    if station is not None and station.revoked_at is not None:
        return "station_revoked", f"this station was revoked on {_day(station.revoked_at)}; {ASK_AGAIN}"
    ended = session.scalar(select(EndedStationToken).where(EndedStationToken.token_hash == digest))
    if ended is not None and ended.reason == "reenrolled":
        return (
            "station_reenrolled",
            f"this station was enrolled again on {_day(ended.ended_at)} (a new enrolment code was used, perhaps "
            f"on another computer), so this token no longer works; if that was not you, tell your administrator; "
            f"{ASK_AGAIN}",
        )
    if ended is not None and ended.reason == "replaced":
        return (
            "station_credentials_replaced",
            f"an administrator replaced this station's credentials on {_day(ended.ended_at)}; {ASK_AGAIN}",
        )
    rotated = session.scalar(select(Station).where(Station.previous_token_hash == digest))
    if (ended is not None and ended.reason == "rotated") or rotated is not None:
        return (
            "station_token_rotated",
            "this token was replaced by a token rotation: use the new token saved in station.json, or " + ASK_AGAIN,
        )
    return "unknown_station_token", f"the server does not know this station token; {ASK_AGAIN}"


def rotate_token(session: Session, station: Station, presented: str, grace_hours: int) -> str:
    """A new token for ``station``; the one presented stays valid until the new one is used (or the grace ends).

    Rotating with the old token again (the new one was lost in a crash) gives yet another token and
    keeps the old one in grace: a station is never locked out by a rotation that did not arrive.
    """
    now = utcnow()
    if station.previous_token_hash != token_hash(presented):
        _end_token(session, station, station.previous_token_hash, "rotated")
        station.previous_token_hash = station.token_hash
        station.previous_token_expires_at = now + timedelta(hours=grace_hours)
    else:
        _end_token(session, station, station.token_hash, "rotated")  # the lost new token
    token = new_token(STATION_TOKEN_PREFIX)
    station.token_hash = token_hash(token)
    station.token_rotated_at = now
    return token


def heartbeat(station: Station, data: dict[str, Any]) -> None:
    station.last_seen_at = utcnow()
    station.heartbeat = data
