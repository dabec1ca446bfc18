"""Users and stations adopted into the log, once: the step that lets the rows check bind them on a site that
ran before every user's and station's creation was recorded.

A user's role and unit decide what they see; a station's unit and token decide whose recorders it takes in.
So the rows check binds both (``USER_EVIDENCE``, ``STATION_EVIDENCE``) and names a row that no entry records
as inserted behind the log's back. But sites that started before ``custodia up`` recorded what it made have a
first administrator, officer and station with no creation entry, and the check would raise an incident for
each on every run. So the rows found without one are adopted, once per kind: each gets a ``<kind>.adopted``
entry recording the row as it stands, then one ``<kinds>.adopted`` entry marks that the adoption happened.
Until that mark is in the log, the check leaves that kind unbound (and says so); from then on every row must
have been created or adopted on the record, and one that was not is named. The adoption runs at the first
rows check after the upgrade, at ``custodia up`` and on demand (``custodia audit adopt``).

What the adoption vouches for is only what was there when it ran: a row edited or inserted in the database
before then is adopted as it stood. The entries name every adopted row, for legal affairs to review.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, exists, func, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import USER_EVIDENCE, User
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.models import AuditEvent
from evidence_server.audit.service import record as audit
from evidence_server.stations.models import Station, station_evidence


@dataclass(frozen=True)
class Adoption:
    kind: str  # the entries' object type, and the key of the row's evidence in their details
    model: Any
    created: tuple[str, ...]  # the entries that record a row's coming into being (the adoption's among them)
    mark: str  # the entry that marks the adoption done: rows of this kind are bound from then on
    evidence: Callable[[Any], dict[str, Any]]
    label: tuple[str, Callable[[Any], str]]  # a readable name for the row, for whoever reads the entry


USERS = Adoption(
    "user",
    User,
    ("user.created", "user.adopted"),
    "users.adopted",
    lambda u: fields_of(u, USER_EVIDENCE),
    ("username", lambda u: str(u.username)),
)
STATIONS = Adoption(
    "station",
    Station,
    ("station.created", "station.adopted"),
    "stations.adopted",
    station_evidence,
    ("name", lambda s: str(s.name)),
)
ADOPTIONS = (USERS, STATIONS)
#: the names the users' adoption was first written with
ADOPTED, USER_CREATED = USERS.mark, USERS.created


def logged(session: Session, action: str) -> bool:
    """Has the log an entry of ``action``?"""
    return session.scalar(select(AuditEvent.seq).where(AuditEvent.action == action).limit(1)) is not None


def adopted(session: Session, a: Adoption = USERS) -> bool:
    """Has the log the mark of this kind's adoption?"""
    return logged(session, a.mark)


def adopt(session: Session, a: Adoption) -> list[int] | None:
    """Adopt every row of ``a``'s kind without a creation entry (the ids, in order), once; None if the log
    already has the mark. The caller commits. On PostgreSQL, two processes starting at once adopt once: the
    second waits for the first's commit and finds the mark (on SQLite both may: they record the same)."""
    if adopted(session, a):
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("custodia adopted " + a.kind, 0))))
        if adopted(session, a):
            return None
    recorded = exists().where(
        AuditEvent.object_type == a.kind,
        AuditEvent.action.in_(a.created),
        AuditEvent.object_id == cast(a.model.id, String),
    )
    rows = list(session.scalars(select(a.model).where(~recorded).order_by(a.model.id)))
    key, name = a.label
    for row in rows:
        details = {key: name(row), a.kind: a.evidence(row)}
        audit(session, f"{a.kind}.adopted", object_type=a.kind, object_id=row.id, details=details)
    ids = [r.id for r in rows]
    total = session.scalar(select(func.count()).select_from(a.model)) or 0
    audit(session, a.mark, object_type=a.kind, details={"adopted": ids, "rows": int(total)})
    return ids


def adopt_users(session: Session) -> list[int] | None:
    return adopt(session, USERS)


def adopt_all(session: Session) -> dict[str, list[int] | None]:
    """Every kind's adoption (each once); by kind, the ids adopted now (None: adopted before)."""
    return {a.kind: adopt(session, a) for a in ADOPTIONS}
