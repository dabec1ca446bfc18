"""Cases on the database: open, edit, close and share a case; link and unlink recordings.

Each operation checks its rule, writes, and appends the audit event in the same transaction; the
caller commits. A refusal raises ``CaseError`` with a stable ``code`` (the API answers with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, Unit, User
from evidence_server.accounts.service import unit_in_reach
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.service import record as audit
from evidence_server.cases import access, numbers
from evidence_server.cases.access import recordings_visible
from evidence_server.cases.models import CASE_EVIDENCE, LINK_EVIDENCE, Case, CaseLink, CaseShare
from evidence_server.db import utcnow
from evidence_server.recordings.models import Recording

STATUSES = ("open", "closed")


class CaseError(Exception):
    """A case rule refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def check_number(raw: str, pattern: str) -> str:
    try:
        return numbers.check(raw, pattern)
    except numbers.CaseNumberError as exc:
        raise CaseError("malformed_case_number", str(exc)) from exc


def get_case(session: Session, user: User, case_id: int) -> Case:
    case = session.scalar(access.cases_visible(user).where(Case.id == case_id))
    if case is None:
        raise CaseError("unknown_case", f"no case {case_id}, or not one you may see", 404)
    return case


def find_by_number(session: Session, user: User, raw: str, pattern: str) -> Case:
    """The case with this number, among those ``user`` may see; malformed and unknown numbers refused."""
    number = check_number(raw, pattern)
    case = session.scalar(access.cases_visible(user).where(Case.number == number))
    if case is None:
        raise CaseError("unknown_case_number", f"no case numbered {number}, or not one you may see", 404)
    return case


@dataclass
class CaseFields:
    name: str
    enforcement_matter: str | None = None
    officers: list[dict[str, Any]] | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    status: str | None = None


def _clean(fields: CaseFields) -> dict[str, Any]:
    name = (fields.name or "").strip()
    if not name:
        raise CaseError("no_case_name", "the case needs a name")
    if fields.status is not None and fields.status not in STATUSES:
        raise CaseError("bad_status", f"status is one of {', '.join(STATUSES)}")
    officers = [
        {
            "officer_no": str(o.get("officer_no") or "").strip()[:32] or None,
            "name": str(o.get("name") or "").strip()[:200] or None,
        }
        for o in fields.officers or []
    ]
    return {
        "name": name[:300],
        "enforcement_matter": (fields.enforcement_matter or "").strip()[:500] or None,
        "officers": [o for o in officers if o["officer_no"] or o["name"]],
        "opened_on": fields.opened_on,
        "closed_on": fields.closed_on,
    }


def _require_manager(user: User) -> None:
    if Role(user.role) not in access.MANAGERS:
        raise CaseError("not_case_manager", "only a case handler may change cases", 403)


def create_case(
    session: Session,
    actor: User | None,
    *,
    number: str,
    fields: CaseFields,
    pattern: str,
    unit_id: int | None = None,
    created_via: str = "manual",
    request: Request | None = None,
) -> Case:
    if actor is not None:
        _require_manager(actor)
    clean_number = check_number(number, pattern)
    if session.scalar(select(Case.id).where(Case.number == clean_number)) is not None:
        raise CaseError("case_exists", f"case {clean_number} already exists", 409)
    unit = unit_id if unit_id is not None else (actor.unit_id if actor is not None else None)
    if actor is None:
        known = session.get(Unit, unit) if unit is not None else None
    else:
        known = unit_in_reach(session, actor, unit)
    if known is None:  # another unit answers as a unit that does not exist
        raise CaseError("unknown_unit", f"no unit {unit} you may open cases in")
    values = _clean(fields)
    case = Case(
        number=clean_number,
        unit_id=unit,
        status=fields.status or "open",
        created_via=created_via,
        created_by_id=actor.id if actor else None,
        **values,
    )
    if case.opened_on is None:
        case.opened_on = utcnow().date()
    session.add(case)
    session.flush()
    audit(
        session,
        "case.create",
        request=request,
        actor=actor,
        object_type="case",
        object_id=case.id,
        details={
            "number": case.number,
            "name": case.name,
            "unit_id": unit,
            "via": created_via,
            "case": fields_of(case, CASE_EVIDENCE),
        },
    )
    return case


def update_case(session: Session, actor: User, case: Case, fields: CaseFields, request: Request | None = None) -> Case:
    _require_manager(actor)
    values = _clean(fields)
    before = {
        k: getattr(case, k) for k in ("name", "enforcement_matter", "officers", "status", "opened_on", "closed_on")
    }
    for key, value in values.items():
        if key in ("opened_on", "closed_on") and value is None:
            continue
        setattr(case, key, value)
    if fields.status is not None:
        case.status = fields.status
        if fields.status == "closed" and case.closed_on is None:
            case.closed_on = utcnow().date()
        if fields.status == "open":
            case.closed_on = None
    case.updated_at = utcnow()
    changed = {k: str(v) for k, v in before.items() if getattr(case, k) != v}
    audit(
        session,
        "case.update",
        request=request,
        actor=actor,
        object_type="case",
        object_id=case.id,
        details={"number": case.number, "changed_from": changed, "case": fields_of(case, CASE_EVIDENCE)},
    )
    return case


def recording_to_link(session: Session, user: User, recording_id: int) -> Recording:
    """A recording ``user`` may see, named in a request; one of another unit that they may not see
    answers exactly as one that does not exist."""
    rec = session.scalar(recordings_visible(user).where(Recording.id == recording_id))
    if rec is None:
        raise CaseError("unknown_recording", f"no recording {recording_id}, or not one you may see", 404)
    return rec


def link_recording(
    session: Session, actor: User, case: Case, recording_id: int, *, reason: str, request: Request | None = None
) -> CaseLink:
    """Link by hand the recording with this id (the API and the case page both call this)."""
    _require_manager(actor)
    rec = recording_to_link(session, actor, recording_id)
    row, created = link(session, actor, case, rec, origin="manual", reason=reason, request=request)
    if not created:
        raise CaseError("already_linked", f"recording {rec.id} is already in case {case.number}", 409)
    return row


def active_link(session: Session, case_id: int, recording_id: int) -> CaseLink | None:
    return session.scalar(
        select(CaseLink).where(
            CaseLink.case_id == case_id, CaseLink.recording_id == recording_id, CaseLink.unlinked_at.is_(None)
        )
    )


def link(
    session: Session,
    actor: User | None,
    case: Case,
    recording: Recording,
    *,
    origin: str,
    reason: str,
    checkout_entry_id: int | None = None,
    request: Request | None = None,
    at_dock: bool = False,
) -> tuple[CaseLink, bool]:
    """Link a recording to a case (idempotent: an active link is returned as it is, with False).

    ``at_dock``: the officer (or administrator) docking names the transfer's case; the transfer's own
    rules admitted them, so the case-handler check does not apply.
    """
    if actor is not None and not at_dock:
        _require_manager(actor)
        recording_to_link(session, actor, recording.id)
        if not access.may_link_recording(actor, recording.unit_id):  # seen through a shared case
            raise CaseError(
                "other_unit_recording", f"recording {recording.id} belongs to another unit: you may not link it", 403
            )
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("no_reason", "say why the recording belongs to the case")
    existing = active_link(session, case.id, recording.id)
    if existing is not None:
        return existing, False
    row = CaseLink(
        case_id=case.id,
        recording_id=recording.id,
        origin=origin,
        reason=reason[:500],
        checkout_entry_id=checkout_entry_id,
        linked_by_id=actor.id if actor else None,
        linked_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit(
        session,
        "case.link",
        request=request,
        actor=actor,
        object_type="recording",
        object_id=recording.id,
        details={
            "case_id": case.id,
            "case_number": case.number,
            "link_id": row.id,
            "origin": origin,
            "reason": row.reason,
            "checkout_entry_id": checkout_entry_id,
            "link": fields_of(row, LINK_EVIDENCE),
        },
    )
    return row, True


def unlink(
    session: Session, actor: User | None, case: Case, recording_id: int, *, reason: str, request: Request | None = None
) -> CaseLink:
    if actor is not None:
        _require_manager(actor)
    row = active_link(session, case.id, recording_id)
    if row is None:
        raise CaseError("not_linked", f"recording {recording_id} is not linked to case {case.number}", 404)
    rec = session.get(Recording, recording_id)
    if actor is not None and rec is not None and not access.may_link_recording(actor, rec.unit_id):
        raise CaseError(
            "other_unit_recording", f"recording {recording_id} belongs to another unit: you may not unlink it", 403
        )
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("no_reason", "say why the recording is taken out of the case")
    row.unlinked_at, row.unlinked_by_id, row.unlink_reason = utcnow(), actor.id if actor else None, reason[:500]
    audit(
        session,
        "case.unlink",
        request=request,
        actor=actor,
        object_type="recording",
        object_id=recording_id,
        details={
            "case_id": case.id,
            "case_number": case.number,
            "link_id": row.id,
            "reason": row.unlink_reason,
            "link": fields_of(row, LINK_EVIDENCE),
        },
    )
    return row


def share(
    session: Session,
    actor: User,
    case: Case,
    *,
    user_id: int | None,
    unit_id: int | None,
    reason: str,
    request: Request | None = None,
) -> CaseShare:
    _require_manager(actor)
    if (user_id is None) == (unit_id is None):
        raise CaseError("bad_share", "share with one user or one unit")
    if user_id is not None and session.get(User, user_id) is None:
        raise CaseError("unknown_user", f"no user {user_id}", 404)
    if unit_id is not None and session.get(Unit, unit_id) is None:
        raise CaseError("unknown_unit", f"no unit {unit_id}", 404)
    if not (reason or "").strip():
        raise CaseError("no_reason", "say why the case is shared")
    row = CaseShare(
        case_id=case.id,
        user_id=user_id,
        unit_id=unit_id,
        reason=reason.strip()[:500],
        shared_by_id=actor.id,
        shared_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit(
        session,
        "case.share",
        request=request,
        actor=actor,
        object_type="case",
        object_id=case.id,
        details={"share_id": row.id, "user_id": user_id, "unit_id": unit_id, "reason": row.reason},
    )
    return row


def unshare(session: Session, actor: User, case: Case, share_id: int, request: Request | None = None) -> CaseShare:
    _require_manager(actor)
    row = session.get(CaseShare, share_id)
    if row is None or row.case_id != case.id or row.revoked_at is not None:
        raise CaseError("unknown_share", f"no share {share_id} of this case", 404)
    row.revoked_at, row.revoked_by_id = utcnow(), actor.id
    audit(
        session,
        "case.unshare",
        request=request,
        actor=actor,
        object_type="case",
        object_id=case.id,
        details={"share_id": row.id},
    )
    return row


def links_of_case(session: Session, case_id: int, *, history: bool = False) -> list[CaseLink]:
    q = select(CaseLink).where(CaseLink.case_id == case_id)
    if not history:
        q = q.where(CaseLink.unlinked_at.is_(None))
    return list(session.scalars(q.order_by(CaseLink.linked_at, CaseLink.id)))


def recordings_of_case(session: Session, user: User, case_id: int) -> list[Recording]:
    """The case's linked recordings that ``user`` may see, in time order."""
    ids = select(CaseLink.recording_id).where(CaseLink.case_id == case_id, CaseLink.unlinked_at.is_(None))
    q = recordings_visible(user).where(Recording.id.in_(ids))
    return list(session.scalars(q.order_by(Recording.name_started_at.nulls_last(), Recording.id)))


def cases_of_recording(session: Session, user: User, recording_id: int) -> list[Case]:
    ids = select(CaseLink.case_id).where(CaseLink.recording_id == recording_id, CaseLink.unlinked_at.is_(None))
    return list(session.scalars(access.cases_visible(user).where(Case.id.in_(ids)).order_by(Case.number)))
