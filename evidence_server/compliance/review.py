"""The legal-affairs review of a flag: open → under review → confirmed or dismissed (with a reason),
assignment, comments, and the explanations of the officer and the device administrator.

Every step is a ``FlagEvent`` on the flag and an audit event. Callers commit.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.compliance.models import ComplianceFlag, FlagEvent
from evidence_server.compliance.service import EXPLAINERS, REVIEWERS, flags_visible
from evidence_server.db import utcnow

#: allowed moves: a decision needs a review first; a decision may be reopened for review
TRANSITIONS = {
    "open": {"under_review"},
    "under_review": {"confirmed", "dismissed", "open"},
    "confirmed": {"under_review"},
    "dismissed": {"under_review"},
}
NEEDS_REASON = frozenset({"confirmed", "dismissed"})
MAX_TEXT = 4000


class ReviewError(Exception):
    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def get_flag(session: Session, user: User, flag_id: int) -> ComplianceFlag:
    flag = session.scalar(flags_visible(user).where(ComplianceFlag.id == flag_id))
    if flag is None:
        raise ReviewError("unknown_flag", "no such flag, or not one you may see", 404)
    return flag


def events_of(session: Session, flag_id: int) -> list[FlagEvent]:
    return list(
        session.scalars(select(FlagEvent).where(FlagEvent.flag_id == flag_id).order_by(FlagEvent.at, FlagEvent.id))
    )


def _text(value: str | None, code: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ReviewError(code, "write something")
    return text[:MAX_TEXT]


def _step(
    session: Session,
    actor: User,
    flag: ComplianceFlag,
    action: str,
    request: Request | None,
    *,
    body: str | None = None,
    details: dict[str, Any] | None = None,
) -> FlagEvent:
    now = utcnow()
    ev = FlagEvent(
        flag_id=flag.id, at=now, action=action, actor_id=actor.id, actor_role=actor.role, body=body, details=details
    )
    session.add(ev)
    flag.updated_at = now
    audit(
        session,
        f"compliance.{action}",
        request=request,
        actor=actor,
        object_type="compliance_flag",
        object_id=flag.id,
        details={"kind": flag.kind, "key": flag.key, **(details or {}), **({"text": body} if body else {})},
    )
    return ev


def _reviewer(actor: User) -> None:
    if Role(actor.role) not in REVIEWERS:
        raise ReviewError("not_reviewer", "only legal affairs and auditors review flags", 403)


def transition(
    session: Session,
    actor: User,
    flag: ComplianceFlag,
    to: str,
    reason: str | None = None,
    request: Request | None = None,
) -> ComplianceFlag:
    _reviewer(actor)
    if to not in TRANSITIONS.get(flag.state, set()):
        raise ReviewError("bad_transition", f"a flag {flag.state} cannot become {to}", 409)
    text = (reason or "").strip()[:MAX_TEXT] or None
    if to in NEEDS_REASON or flag.state in NEEDS_REASON:
        text = _text(reason, "reason_required")
    before = flag.state
    flag.state = to
    if to in NEEDS_REASON:
        flag.reviewed_by_id, flag.reviewed_at, flag.decision_reason = actor.id, utcnow(), text
    elif before in NEEDS_REASON:
        flag.reviewed_by_id, flag.reviewed_at, flag.decision_reason = None, None, None
    if to == "under_review" and flag.assignee_id is None:
        flag.assignee_id = actor.id
    _step(session, actor, flag, "review", request, body=text, details={"from": before, "to": to})
    return flag


def assign(
    session: Session, actor: User, flag: ComplianceFlag, assignee_id: int | None, request: Request | None = None
) -> ComplianceFlag:
    _reviewer(actor)
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.active or Role(assignee.role) not in REVIEWERS:
            raise ReviewError("bad_assignee", "assign to an active legal-affairs officer or auditor")
    before = flag.assignee_id
    flag.assignee_id = assignee_id
    _step(session, actor, flag, "assign", request, details={"from": before, "to": assignee_id})
    return flag


def comment(
    session: Session, actor: User, flag: ComplianceFlag, body: str, request: Request | None = None
) -> FlagEvent:
    _reviewer(actor)
    return _step(session, actor, flag, "comment", request, body=_text(body, "empty_text"))


def explain(
    session: Session, actor: User, flag: ComplianceFlag, body: str, request: Request | None = None
) -> FlagEvent:
    """The officer concerned, or the administrator of the flag's unit, explains what happened."""
    if Role(actor.role) not in EXPLAINERS:
        raise ReviewError("not_explainer", "explanations come from the officer or the device administrator", 403)
    if flag.state in NEEDS_REASON:
        raise ReviewError("decided", "the flag is already decided", 409)
    return _step(session, actor, flag, "explain", request, body=_text(body, "empty_text"))
