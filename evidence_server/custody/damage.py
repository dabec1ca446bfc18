"""A stored copy found damaged or missing: the error every read raises, and the record it leaves.

Marking is its own short transaction (``mark_damaged``) or part of the caller's (``damage``):
the copy's fixity state, an integrity incident for legal affairs, and a ``recording.damaged`` entry.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.recordings.models import DAMAGED, Recording
from evidence_server.uploads.models import IntegrityIncident

log = logging.getLogger(__name__)


class CopyDamaged(Exception):
    """The stored copy of a recording is damaged or missing: its bytes are not handed out."""

    def __init__(self, recording_id: int, state: str, incident_id: int | None = None) -> None:
        super().__init__(
            f"recording {recording_id}: the stored copy is {'missing' if state == 'missing' else 'damaged'}; "
            "it is not served, and an integrity incident was recorded for legal affairs"
            + (f" (incident {incident_id})" if incident_id else "")
        )
        self.recording_id, self.state, self.incident_id = recording_id, state, incident_id


def mark_damaged(ctx: ServerContext, recording_id: int, state: str, where: str, details: dict[str, Any]) -> int:
    """Record that a read found the stored copy damaged (``failed``) or ``missing``; the incident's id."""
    with ctx.sessionmaker() as session:
        incident = damage(session, recording_id, state, where, details)
        session.commit()
        return incident


def damage(session: Session, recording_id: int, state: str, where: str, details: dict[str, Any]) -> int:
    rec = session.get_one(Recording, recording_id)
    previous = rec.fixity_state
    if previous not in DAMAGED and previous != "disposed":
        rec.fixity_state, rec.fixity_checked_at = state, utcnow()
    incident = IntegrityIncident(
        kind="read_missing" if state == "missing" else "read_mismatch",
        recording_id=rec.id,
        transfer_id=rec.transfer_id,
        station_id=rec.station_id,
        details={"where": where, "storage_key": rec.storage_key, **details},
    )
    session.add(incident)
    session.flush()
    audit(
        session,
        "recording.damaged",
        object_type="recording",
        object_id=rec.id,
        details={"state": state, "previous_state": previous, "where": where, "incident_id": incident.id, **details},
    )
    log.error("recording %s: stored copy %s, found by %s (%s)", rec.id, state, where, details)
    return incident.id
