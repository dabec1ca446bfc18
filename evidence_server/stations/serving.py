"""Units a station serves besides its own: a shared station at a joint inspection point.

Only a system administrator grants or withdraws this (each an audit entry); a station takes in
devices of its own unit, of the units it was granted, and devices never seen before.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Unit, User
from evidence_server.audit.service import record as audit
from evidence_server.stations.models import Station, StationUnit


class ServingError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def served_units(session: Session, station: Station) -> list[int]:
    return sorted(session.scalars(select(StationUnit.unit_id).where(StationUnit.station_id == station.id)).all())


def grant(session: Session, actor: User, station: Station, unit_id: int, request: Request | None = None) -> bool:
    """Let ``station`` take in devices of ``unit_id``; False when it already may."""
    if session.get(Unit, unit_id) is None:
        raise ServingError(404, "no such unit")
    if unit_id == station.unit_id:
        raise ServingError(409, "a station always serves its own unit")
    if session.get(StationUnit, (station.id, unit_id)) is not None:
        return False
    session.add(StationUnit(station_id=station.id, unit_id=unit_id, granted_by_id=actor.id))
    audit(
        session,
        "station.unit_granted",
        request=request,
        object_type="station",
        object_id=station.id,
        details={"unit_id": unit_id, "station_unit_id": station.unit_id},
    )
    return True


def withdraw(session: Session, station: Station, unit_id: int, request: Request | None = None) -> bool:
    row = session.get(StationUnit, (station.id, unit_id))
    if row is None:
        return False
    session.delete(row)
    audit(
        session,
        "station.unit_withdrawn",
        request=request,
        object_type="station",
        object_id=station.id,
        details={"unit_id": unit_id},
    )
    return True
