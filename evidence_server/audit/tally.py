"""Anonymous failures, recorded without letting an attacker grow the log: one entry per kind per window.

A failure that anyone can cause (a wrong password, a bad enrolment code, a refused CSRF token, a
throttled request) is keyed by (action, client address, subject) and a time window. The first of a
key in its window is an audit entry in full; the others raise a counter in ``audit_tallies``, and
``close_windows`` turns each closed window's counter into one ``audit.repeated`` entry. Past
``max_keys`` distinct keys for an action in one window, further failures share the key
(action, "*", "*"). So the log gains at most 2 x (max_keys + 1) entries per action and window, however
many requests arrive, and it still says how many there were: held in the database, for every API
process together.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from fastapi import Request
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from evidence_server.audit.models import AuditTally
from evidence_server.audit.service import record
from evidence_server.db import utcnow

EVERYONE = "*"


def window_start(now: datetime, window_s: int) -> datetime:
    seconds = int(now.timestamp()) // window_s * window_s
    return datetime.fromtimestamp(seconds, UTC)


def _key(session: Session, action: str, addr: str, subject: str, start: datetime, max_keys: int) -> tuple[str, str]:
    """The key this failure is counted under: its own, or the shared one past ``max_keys``."""
    known = session.scalar(
        select(AuditTally.id).where(
            AuditTally.action == action,
            AuditTally.client_addr == addr,
            AuditTally.subject == subject,
            AuditTally.window_start == start,
        )
    )
    if known is not None:
        return addr, subject
    keys = session.scalar(select(func.count()).where(AuditTally.action == action, AuditTally.window_start == start))
    return (addr, subject) if (keys or 0) < max_keys else (EVERYONE, EVERYONE)


def _count(session: Session, action: str, addr: str, subject: str, start: datetime) -> int:
    """Add one to the key's counter (one atomic upsert) and return the new count."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    row = {"action": action, "client_addr": addr, "subject": subject, "window_start": start, "count": 1}
    stmt = (
        insert(AuditTally)
        .values(**row)
        .on_conflict_do_update(index_elements=list(row)[:4], set_={"count": AuditTally.count + 1})
        .returning(AuditTally.count)
    )
    return int(session.execute(stmt).scalar_one())


def record_failure(
    session: Session,
    action: str,
    *,
    request: Request | None,
    subject: str = "",
    details: dict[str, Any] | None = None,
    window_s: int = 300,
    max_keys: int = 50,
    **entry: Any,
) -> bool:
    """Record an anonymous failure; True when it became an entry of its own (the first of its kind)."""
    addr = (request.client.host if request is not None and request.client else "")[:64]
    start = window_start(utcnow(), window_s)
    addr, subject = _key(session, action, addr, subject[:200], start, max_keys)
    if _count(session, action, addr, subject, start) > 1:
        return False
    record(session, action, request=request, details=details, **entry)
    return True


def close_windows(session: Session, window_s: int, now: datetime | None = None) -> int:
    """Turn every closed window's counters into ``audit.repeated`` entries; the caller commits."""
    now = now or utcnow()
    closed = list(
        session.scalars(
            select(AuditTally)
            .where(AuditTally.window_start <= now - timedelta(seconds=window_s))
            .order_by(AuditTally.window_start, AuditTally.id)
            .with_for_update(skip_locked=True)
        )
    )
    written = 0
    for tally in closed:
        if tally.count > 1:
            record(
                session,
                "audit.repeated",
                details={
                    "action": tally.action,
                    "client_addr": tally.client_addr,
                    "subject": tally.subject,
                    "window_start": tally.window_start.isoformat(),
                    "window_s": window_s,
                    "count": tally.count - 1,  # the first is an entry of its own
                },
            )
            written += 1
    if closed:
        session.execute(delete(AuditTally).where(AuditTally.id.in_([t.id for t in closed])))
    return written


class TallyLimits(TypedDict):
    window_s: int
    max_keys: int


def limits_of(settings: Any) -> TallyLimits:
    """The window and key cap from Settings (``audit_tally_window_s``, ``audit_tally_max_keys``)."""
    return {"window_s": settings.audit_tally_window_s, "max_keys": settings.audit_tally_max_keys}
