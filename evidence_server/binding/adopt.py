"""Users adopted into the log, once: the step that lets the rows check bind users on a site that ran before
every user's creation was recorded.

A user's role and unit decide what they see, so the rows check binds them (``USER_EVIDENCE``). It names a
user row that no entry records as inserted behind the log's back; but sites that started before
``custodia up`` recorded the users it made have a first administrator and officer with no creation entry,
and the check would raise an incident for each on every run. So the users found without one are adopted,
once: each gets a ``user.adopted`` entry recording the row as it stands, then one ``users.adopted`` entry
marks that the adoption happened. Until that mark is in the log, the check leaves users unbound (and says
so); from then on every user must have been created or adopted on the record, and one that was not is
named. The adoption runs at the first rows check after the upgrade and at ``custodia up``.

What the adoption vouches for is only what was there when it ran: a user edited or inserted in the database
before then is adopted as it stood. The entries name every adopted user, for legal affairs to review.
"""

from __future__ import annotations

from sqlalchemy import String, cast, exists, func, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import USER_EVIDENCE, User
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.models import AuditEvent
from evidence_server.audit.service import record as audit

#: the entry that marks the adoption done: users are bound from then on
ADOPTED = "users.adopted"
#: the entries that record a user's coming into being
USER_CREATED = ("user.created", "user.adopted")


def adopted(session: Session) -> bool:
    """Has the log the mark of the users' adoption?"""
    return session.scalar(select(AuditEvent.seq).where(AuditEvent.action == ADOPTED).limit(1)) is not None


def adopt_users(session: Session) -> list[int] | None:
    """Adopt every user without a creation entry (the ids, in order), once; None if the log already has the
    mark. The caller commits. On PostgreSQL, two processes starting at once adopt once: the second waits for
    the first's commit and finds the mark."""
    if adopted(session):
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("custodia users adopted", 0))))
        if adopted(session):
            return None
    recorded = exists().where(
        AuditEvent.object_type == "user",
        AuditEvent.action.in_(USER_CREATED),
        AuditEvent.object_id == cast(User.id, String),
    )
    users = list(session.scalars(select(User).where(~recorded).order_by(User.id)))
    for user in users:
        audit(
            session,
            "user.adopted",
            object_type="user",
            object_id=user.id,
            details={"username": user.username, "user": fields_of(user, USER_EVIDENCE)},
        )
    ids = [u.id for u in users]
    total = session.scalar(select(func.count()).select_from(User)) or 0
    audit(session, ADOPTED, object_type="user", details={"adopted": ids, "users": int(total)})
    return ids
