"""Dock ports and docks as people follow them: each port's state, failures, per-file progress, refused files.

The station reports each port's state (``POST /stations/me/ports``); the station page, the fleet
page and the officer's page read it here, so that a dock that failed shows where people look,
with the reason and what to do, instead of as one line in a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.audit.service import record as audit
from evidence_server.db import utcnow
from evidence_server.docks.models import DockPort
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer, TransferFile

PORT_STATES = ("settling", "retrying", "transferring", "done", "waiting", "failed", "empty")
ADVICE = ("redock", "call_admin", "wait")
#: Ports shown as busy or failed on the pages; "done" and "empty" are history.
ACTIVE_STATES = ("settling", "retrying", "transferring", "waiting", "failed")
#: A port that has said nothing for this long is shown as stale, not as busy.
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class PortReport:
    port: str
    state: str
    reason: str | None = None
    advice: str | None = None
    device_serial: str | None = None
    transfer_id: str | None = None
    attempt: int | None = None


def report_port(session: Session, station: Station, report: PortReport) -> DockPort:
    """Record a port's state; a change into ``failed`` is audited (a dock that delivered nothing)."""
    row = session.scalar(select(DockPort).where(DockPort.station_id == station.id, DockPort.port == report.port))
    now = utcnow()
    if row is None:
        row = DockPort(station_id=station.id, port=report.port, state=report.state, since=now)
        session.add(row)
    elif row.state != report.state:
        row.since = now
    changed_to_failed = report.state == "failed" and (row.state != "failed" or row.reason != report.reason)
    row.state, row.reason, row.advice = report.state, report.reason, report.advice
    row.device_serial = report.device_serial or (row.device_serial if report.state != "empty" else None)
    row.transfer_id = report.transfer_id or (row.transfer_id if report.state not in ("empty", "settling") else None)
    row.attempt, row.updated_at = report.attempt, now
    if changed_to_failed:
        session.flush()
        audit(
            session,
            "dock.failed",
            actor=station,
            object_type="station",
            object_id=station.id,
            details={"port": report.port, "reason": report.reason, "advice": report.advice},
        )
    return row


@dataclass(frozen=True)
class PortView:
    port: DockPort
    station: Station


def _stations(user: User | None, unit_id: int | None) -> Any:
    q = select(Station.id)
    if unit_id is not None:
        q = q.where(Station.unit_id == unit_id)
    elif user is not None and not user.sees_all_units:
        q = q.where(Station.unit_id == user.unit_id)
    return q


def active_ports(
    session: Session,
    *,
    unit_id: int | None = None,
    user: User | None = None,
    states: tuple[str, ...] = ACTIVE_STATES,
) -> list[PortView]:
    """Ports in ``states`` (default: busy or failed) at the stations of a unit (or those the user sees),
    failures first."""
    since = utcnow() - RECENT
    rows = session.execute(
        select(DockPort, Station)
        .join(Station, Station.id == DockPort.station_id)
        .where(
            DockPort.station_id.in_(_stations(user, unit_id)),
            DockPort.state.in_(states),
            DockPort.updated_at >= since,
        )
        .order_by(DockPort.state != "failed", Station.name, DockPort.port)
    ).all()
    return [PortView(p, s) for p, s in rows]


def failed_ports(session: Session, *, unit_id: int | None = None, user: User | None = None) -> list[PortView]:
    return [v for v in active_ports(session, unit_id=unit_id, user=user) if v.port.state == "failed"]


def ports_by_station(session: Session, station_ids: list[int]) -> dict[int, list[DockPort]]:
    """Every port each station has reported recently (for the station page), by port name."""
    since = utcnow() - RECENT
    out: dict[int, list[DockPort]] = {i: [] for i in station_ids}
    if not station_ids:
        return out
    for port in session.scalars(
        select(DockPort)
        .where(DockPort.station_id.in_(station_ids), DockPort.updated_at >= since)
        .order_by(DockPort.port)
    ):
        out[port.station_id].append(port)
    return out


# --- an officer's docks -----------------------------------------------------------------------


def officer_transfers(session: Session, user: User, *, days: int = 7, limit: int = 20) -> list[Transfer]:
    """The officer's recent docks (by their number), newest first; nothing for an officer without one."""
    if not user.officer_no:
        return []
    since = utcnow() - timedelta(days=days)
    return list(
        session.scalars(
            select(Transfer)
            .where(Transfer.officer_no == user.officer_no, Transfer.docked_at >= since)
            .order_by(Transfer.docked_at.desc())
            .limit(limit)
        )
    )


def transfers_awaiting_task(session: Session, user: User, limit: int = 50) -> list[Transfer]:
    """The officer's docks whose enforcement matter or case is not yet recorded (R5)."""
    if not user.officer_no:
        return []
    return list(
        session.scalars(
            select(Transfer)
            .where(
                Transfer.officer_no == user.officer_no,
                or_(Transfer.enforcement_matter.is_(None), Transfer.case_id.is_(None)),
            )
            .order_by(Transfer.docked_at.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    state: str  # verified | held | waiting | refused
    reason: str | None = None
    recording_id: int | None = None


def file_rows(session: Session, transfer: Transfer) -> list[FileRow]:
    """Each file of a dock and where it is: verified in this dock, held from an earlier one, waiting, refused."""
    verified = dict(
        session.execute(
            select(TransferFile.path, TransferFile.recording_id).where(TransferFile.transfer_id == transfer.id)
        ).all()
    )
    paths = [str(e["path"]) for e in transfer.index or []]
    held = dict(
        session.execute(
            select(Recording.original_path, Recording.id).where(
                Recording.device_serial == transfer.device_serial, Recording.original_path.in_(paths[:5000])
            )
        ).all()
    )
    rows = []
    for e in transfer.index or []:
        path = str(e["path"])
        if path in verified:
            rows.append(FileRow(path, int(e["size"]), "verified", recording_id=verified[path]))
        elif path in held:
            rows.append(FileRow(path, int(e["size"]), "held", recording_id=held[path]))
        else:
            rows.append(FileRow(path, int(e["size"]), "waiting"))
    for r in transfer.rejected or []:
        rows.append(FileRow(str(r.get("path", "?")), 0, "refused", reason=str(r.get("reason", ""))))
    return rows


@dataclass(frozen=True)
class Refused:
    transfer: Transfer
    path: str
    reason: str


def refused_files(session: Session, user: User, *, days: int = 30, limit: int = 200) -> list[Refused]:
    """Files recorders held that the station refused (links, device nodes, odd names, too large), newest first.

    Officers see their own docks', device administrators their unit's, supervisors all.
    """
    since = utcnow() - timedelta(days=days)
    q = select(Transfer).where(Transfer.docked_at >= since).order_by(Transfer.docked_at.desc())
    if user.role == "officer":
        q = q.where(Transfer.officer_no == (user.officer_no or "\0"))
    elif not user.sees_all_units:
        q = q.where(Transfer.unit_id == user.unit_id)
    out: list[Refused] = []
    for transfer in session.scalars(q.limit(500)):
        for r in transfer.rejected or []:
            out.append(Refused(transfer, str(r.get("path", "?")), str(r.get("reason", ""))))
            if len(out) >= limit:
                return out
    return out


def last_update(ports: list[DockPort]) -> datetime | None:
    return max((p.updated_at for p in ports), default=None)
