"""The evidence-bearing fields of a row, as an audit entry records them and as the rows check reads them.

A feature that creates or changes an evidence-bearing row (a ledger entry, a case link, a legal hold, a
disposal) puts ``fields_of(row, FIELDS)`` into the details of the audit entry it writes, so the log holds
every field in full and ``evidence_server.binding`` can later name the one that was edited in the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire.auditlog import entry_time
from evidence_server.audit.models import AuditEvent

BATCH = 500


def plain(value: Any) -> Any:
    """A column value as JSON: UTC timestamps in the log's own form, dates ISO, the rest as they are."""
    if isinstance(value, datetime):
        return entry_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def fields_of(row: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{name: plain(row.name)}`` for each evidence-bearing field."""
    return {name: plain(getattr(row, name)) for name in names}


@dataclass(frozen=True)
class LoggedDigests:
    """A recording's digests as its ``recording.verified`` entry recorded them (SM3 as the first entry that
    recorded it: that one, or the ``recording.sm3`` entry of a recording stored before SM3 was computed)."""

    seq: int
    size: int
    blake3: str
    sha256: str
    sm3: str | None = None


#: the entries that record a recording's SM3 (``recording.sm3``: the backfill of one stored before)
SM3_ACTIONS = ("recording.verified", "recording.sm3")


def logged_digests(session: Session, recording_ids: list[int]) -> dict[int, LoggedDigests]:
    """The digests each recording was verified with, from the log (the first entry that recorded them):
    what a stored copy is checked against, never the editable row."""
    out: dict[int, LoggedDigests] = {}
    for start in range(0, len(recording_ids), BATCH):
        ids = [str(i) for i in recording_ids[start : start + BATCH]]
        stmt = (
            select(AuditEvent.seq, AuditEvent.object_id, AuditEvent.action, AuditEvent.details)
            .where(
                AuditEvent.object_type == "recording",
                AuditEvent.object_id.in_(ids),
                AuditEvent.action.in_(SM3_ACTIONS),
            )
            .order_by(AuditEvent.seq)
        )
        sm3: dict[int, str] = {}
        for seq, object_id, action, details in session.execute(stmt):
            d = details or {}
            rid = int(object_id)
            if rid not in sm3 and isinstance(d.get("sm3"), str):
                sm3[rid] = d["sm3"]
            if action == "recording.verified" and rid not in out and all(k in d for k in ("size", "blake3", "sha256")):
                out[rid] = LoggedDigests(seq, int(d["size"]), str(d["blake3"]), str(d["sha256"]))
        for rid, value in sm3.items():
            if rid in out:
                out[rid] = replace(out[rid], sm3=value)
    return out
