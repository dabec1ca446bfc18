"""The units each station serves besides its own (``station_units``) against the log's grants.

A grant lets a shared station take in another unit's recorders (``ledger.docks.dock_access``): a grant
made up in the database would let a station of one unit take custody of another's footage, and a
withdrawn grant put back would let it go on doing so. Only a system administrator grants or withdraws,
each time with an entry (``station.unit_granted``, ``station.unit_withdrawn``, naming the unit); so the
table must be what those entries, replayed in log order, leave. The table holds a few rows a station, and
is read whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.audit.models import AuditEvent
from evidence_server.binding.rules import Finding
from evidence_server.stations.models import StationUnit

TABLE = "station_units"
GRANTED, WITHDRAWN = "station.unit_granted", "station.unit_withdrawn"


def logged_grants(entries: list[tuple[int, str, Any, Any]]) -> dict[tuple[int, int], tuple[bool, int, str]]:
    """(station, unit) → (in force, seq, action of the entry that said so last), from (seq, action, station
    id, details) in log order. Pure."""
    out: dict[tuple[int, int], tuple[bool, int, str]] = {}
    for seq, action, station_id, details in entries:
        unit_id: Any = (details or {}).get("unit_id")
        try:
            key = (int(station_id), int(unit_id))
        except (TypeError, ValueError):
            continue
        out[key] = (action == GRANTED, seq, action)
    return out


def check_grants(session: Session, findings: list[Finding]) -> int:
    """Every grant in the table against the log, and every grant in force in the log against the table; the
    findings are appended; returns the rows checked."""
    rows = {(s, u) for s, u in session.execute(select(StationUnit.station_id, StationUnit.unit_id))}
    said = logged_grants(
        list(
            session.execute(
                select(AuditEvent.seq, AuditEvent.action, AuditEvent.object_id, AuditEvent.details)
                .where(AuditEvent.object_type == "station", AuditEvent.action.in_((GRANTED, WITHDRAWN)))
                .order_by(AuditEvent.seq)
            )
        )
    )
    for key in sorted(rows):
        if key not in said:
            findings.append(Finding(TABLE, _row_id(key), None))
        elif not said[key][0]:
            _, seq, action = said[key]
            findings.append(Finding(TABLE, _row_id(key), "granted", True, False, seq, action))
    for key, (in_force, seq, action) in sorted(said.items()):
        if in_force and key not in rows:
            findings.append(Finding(TABLE, _row_id(key), None, seq=seq, action=action))
    return len(rows)


def _row_id(key: tuple[int, int]) -> str:
    return f"station {key[0]}, unit {key[1]}"
