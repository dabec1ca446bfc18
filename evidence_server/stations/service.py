from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.secrets import STATION_TOKEN_PREFIX, new_token, token_hash
from evidence_server.db import utcnow
from evidence_server.stations.models import EnrolmentCode, Station


class EnrolmentError(Exception):
    pass


@dataclass
class IssuedCode:
    station: Station
    code: str
    expires_at: datetime


def create_station(session: Session, *, name: str, unit_id: int, code_hours: int) -> IssuedCode:
    station = session.scalar(select(Station).where(Station.name == name))
    if station is None:
        station = Station(name=name, unit_id=unit_id)
        session.add(station)
        session.flush()
    return issue_code(session, station, code_hours)


def issue_code(session: Session, station: Station, code_hours: int) -> IssuedCode:
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))
    expires = utcnow() + timedelta(hours=code_hours)
    session.add(EnrolmentCode(station_id=station.id, code_hash=token_hash(code), expires_at=expires))
    session.flush()
    return IssuedCode(station, code, expires)


def enrol(session: Session, *, code: str, hostname: str | None) -> tuple[Station, str]:
    """Exchange a one-time code for a station token; the previous token (if any) stops working."""
    row = session.scalar(select(EnrolmentCode).where(EnrolmentCode.code_hash == token_hash(code.strip())))
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise EnrolmentError("unknown, used or expired enrolment code")
    row.used_at = now
    station = session.get_one(Station, row.station_id)
    token = new_token(STATION_TOKEN_PREFIX)
    station.token_hash = token_hash(token)
    station.previous_token_hash = station.previous_token_expires_at = None
    station.enrolled_at = now
    station.revoked_at = None
    station.hostname = hostname
    return station, token


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
            station.previous_token_hash = station.previous_token_expires_at = None
            session.commit()
    else:
        station = session.scalar(select(Station).where(Station.previous_token_hash == digest))
        expires = station.previous_token_expires_at if station is not None else None
        if station is None or expires is None or expires <= utcnow():
            return None
    return station if station.revoked_at is None else None


def rotate_token(session: Session, station: Station, presented: str, grace_hours: int) -> str:
    """A new token for ``station``; the one presented stays valid until the new one is used (or the grace ends).

    Rotating with the old token again (the new one was lost in a crash) gives yet another token and
    keeps the old one in grace: a station is never locked out by a rotation that did not arrive.
    """
    now = utcnow()
    if station.previous_token_hash != token_hash(presented):
        station.previous_token_hash = station.token_hash
        station.previous_token_expires_at = now + timedelta(hours=grace_hours)
    token = new_token(STATION_TOKEN_PREFIX)
    station.token_hash = token_hash(token)
    station.token_rotated_at = now
    return token


def heartbeat(station: Station, data: dict[str, Any]) -> None:
    station.last_seen_at = utcnow()
    station.heartbeat = data
