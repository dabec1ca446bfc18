"""Retention on the database: the policy in force, legal holds, case kinds, extensions, and the retention
changes that shorten retention only once two different people approved them.

Each operation checks its rule, writes, and appends its audit event in the same transaction; the
caller commits. A refusal raises ``RetentionError`` with a stable ``code``; ``refuse`` audits it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from custodia_wire.documents import utc_iso
from evidence_server.accounts.models import ALL_UNITS_ROLES, Role, User
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.service import record as audit
from evidence_server.cases.access import cases_visible, recordings_visible
from evidence_server.cases.models import Case, CaseLink
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.ledger.models import Device
from evidence_server.recordings import important as marks
from evidence_server.recordings.important import MarkRefused
from evidence_server.recordings.models import Recording
from evidence_server.retention.apply import ApplyReport, apply_retention
from evidence_server.retention.models import (
    DISPOSED,
    HOLD_EVIDENCE,
    CaseKind,
    LegalHold,
    RetentionChange,
    RetentionChangeApproval,
    RetentionPolicyVersion,
    RetentionState,
)
from evidence_server.retention.rules import (
    RetentionPolicy,
    Target,
    extends_nothing,
    load_policy,
    shortened_by,
    shortens_extension,
)

#: who approves disposals and retention changes, and carries them out
APPROVERS: tuple[Role, ...] = (Role.legal_affairs, Role.sysadmin)
#: who reads policies, holds, the due list, approvals and certificates (unit roles: their unit's holds)
READERS: tuple[Role, ...] = (Role.legal_affairs, Role.auditor, Role.sysadmin)
#: who places holds: legal affairs anywhere; device administrators and case handlers in their own unit
HOLD_PLACERS: tuple[Role, ...] = (Role.legal_affairs, Role.device_admin, Role.case_handler)
HOLD_READERS: tuple[Role, ...] = (*READERS, Role.device_admin, Role.case_handler)
#: who lifts holds, requests disposals, proposes policies, extends recordings and sets case kinds
MANAGERS: tuple[Role, ...] = (Role.legal_affairs,)
POLICY_EDITORS: tuple[Role, ...] = (Role.legal_affairs, Role.sysadmin)
APPROVALS_NEEDED = 2
#: a hold covering more recordings than this updates the object store in the background job
SYNC_LIMIT = 500


class RetentionError(Exception):
    """A retention rule refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, code: str, message: str, status: int = 409, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details


def refuse(session: Session, request: Request | None, exc: RetentionError) -> HTTPException:
    """Undo the refused operation, audit the refusal, and give the HTTP error to raise."""
    session.rollback()
    audit(
        session,
        "retention.refused",
        request=request,
        details={
            "code": exc.code,
            "message": exc.message,
            **exc.details,
            "path": request.url.path if request is not None else None,
        },
    )
    session.commit()
    return HTTPException(exc.status, {"code": exc.code, "message": exc.message, **exc.details})


# --- the policy ----------------------------------------------------------------------------------


def current_policy(session: Session, ctx: ServerContext) -> tuple[RetentionPolicy, RetentionPolicyVersion | None]:
    """The newest saved policy, or the configured default."""
    row = session.scalar(select(RetentionPolicyVersion).order_by(RetentionPolicyVersion.id.desc()).limit(1))
    return (load_policy(row.policy), row) if row is not None else (load_policy(ctx.settings.retention_policy), None)


def change_mark(
    session: Session,
    ctx: ServerContext,
    user: User,
    rec: Recording,
    action: str,
    reason: str | None,
    request: Request | None,
    via: str | None = None,
) -> MarkRefused | None:
    """Set, clear or review a recording's important mark, and apply retention to it at once (the class
    follows the mark). A refused change is rolled back, audited as refused, committed, and returned; the
    caller commits a change that was made."""
    try:
        marks.change_mark(session, user, rec, action, reason, request)
    except MarkRefused as exc:
        session.rollback()
        details = {"action": action[:16], "code": exc.code, **({"via": via} if via else {})}
        audit(
            session,
            "recording.important_refused",
            request=request,
            object_type="recording",
            object_id=rec.id,
            details=details,
        )
        session.commit()
        return exc
    run_for(session, ctx, [rec.id])
    return None


def run_for(session: Session, ctx: ServerContext, recording_ids: list[int]) -> ApplyReport:
    """Apply retention to these recordings now, in the caller's transaction."""
    policy, _ = current_policy(session, ctx)
    return apply_retention(
        session, ctx.store, policy, tz=ctx.settings.default_timezone, recording_ids=recording_ids, commit=False
    )


def propose_policy(
    session: Session, ctx: ServerContext, user: User, data: dict[str, Any], reason: str, request: Request | None = None
) -> RetentionPolicyVersion | RetentionChange:
    """A new policy: in force at once if it keeps everything at least as long, else a change for approval."""
    try:
        new = load_policy(data)
    except ValueError as exc:
        raise RetentionError("invalid_policy", str(exc), 422) from exc
    need_reason(reason)
    old, _ = current_policy(session, ctx)
    shorter = shortened_by(old, new)
    if not shorter:
        row = RetentionPolicyVersion(policy=new.model_dump(mode="json"), created_by_id=user.id, reason=reason)
        session.add(row)
        session.flush()
        audit(
            session,
            "retention.policy_changed",
            request=request,
            object_type="retention_policy",
            object_id=row.id,
            details={"from": old.model_dump(mode="json"), "to": row.policy, "reason": reason},
        )
        return row
    change = RetentionChange(
        subject="policy",
        current=old.model_dump(mode="json"),
        proposed=new.model_dump(mode="json"),
        reason=reason,
        requested_by_id=user.id,
    )
    session.add(change)
    session.flush()
    audit(
        session,
        "retention.change_requested",
        request=request,
        object_type="retention_change",
        object_id=change.id,
        details={"subject": "policy", "shortens": shorter, "to": change.proposed, "reason": reason},
    )
    return change


def need_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise RetentionError("reason_required", "give a reason: it is kept with the record and in the audit log", 422)
    return reason.strip()


# --- legal holds ---------------------------------------------------------------------------------


def _units(session: Session, query: Any) -> set[int]:
    return {u for u in session.scalars(query) if u is not None}


def target_unit(session: Session, target: Target, value: str) -> int | None:
    """The unit a hold's target belongs to (None: several units); unknown targets are refused."""
    units: set[int] = set()
    if target in (Target.recording, Target.case):
        row = session.get(Recording if target == Target.recording else Case, _ident(value))
        if row is None:
            raise unknown_target(target, value)
        return int(row.unit_id)  # type: ignore[attr-defined]
    if target == Target.device:
        units = _units(session, select(Device.unit_id).where(Device.serial == value)) | _units(
            session, select(Recording.unit_id).where(Recording.device_serial == value).distinct()
        )
    else:
        units = _units(session, select(User.unit_id).where(User.officer_no == value)) | _units(
            session, select(Recording.unit_id).where(Recording.officer_no == value).distinct()
        )
    if not units:
        raise unknown_target(target, value)
    return units.pop() if len(units) == 1 else None


def _ident(value: str) -> int:
    """A numeric id from a hold's value (-1, naming nothing, for anything else or too large)."""
    return int(value) if value.isdigit() and len(value) < 19 else -1


def unknown_target(target: Target, value: str) -> RetentionError:
    """The one refusal for a hold target that does not exist and for one only another unit knows."""
    return RetentionError(f"unknown_{target.value}", f"no {target.value} {value} is known here", 404)


def known_in_unit(session: Session, user: User, target: Target, value: str) -> bool:
    """Does ``user`` (of a unit-bound role) know this target: a recording or case they may see, a
    device of their register or with their unit's footage, an officer of their unit or with its footage?"""
    ident = _ident(value)
    if target == Target.recording:
        return session.scalar(recordings_visible(user).where(Recording.id == ident)) is not None
    if target == Target.case:
        return session.scalar(cases_visible(user).where(Case.id == ident)) is not None
    own = Recording.unit_id == user.unit_id
    if target == Target.device:
        return (
            session.scalar(select(Device.id).where(Device.serial == value, Device.unit_id == user.unit_id)) is not None
            or session.scalar(select(Recording.id).where(Recording.device_serial == value, own).limit(1)) is not None
        )
    return (
        session.scalar(select(User.id).where(User.officer_no == value, User.unit_id == user.unit_id).limit(1))
        is not None
        or session.scalar(select(Recording.id).where(Recording.officer_no == value, own).limit(1)) is not None
    )


def hold_unit(session: Session, user: User, target: Target, value: str) -> int | None:
    """The unit a hold on this target is placed in, checked against who places it.

    Legal affairs hold anything known anywhere. A unit-bound role holds only what is wholly its unit's;
    a target it does not know answers exactly as one that does not exist, so a hold attempt cannot
    tell which ids or serials other units have.
    """
    if Role(user.role) not in ALL_UNITS_ROLES and not known_in_unit(session, user, target, value):
        raise unknown_target(target, value)
    unit = target_unit(session, target, value)
    if Role(user.role) not in ALL_UNITS_ROLES and unit != user.unit_id:
        # known to them (their own footage, or a case shared with them) but partly another unit's
        raise RetentionError("other_unit", "you may place holds only on your own unit's footage", 403)
    return unit


def covered_recordings(session: Session, target: Target, value: str) -> list[int]:
    query = select(Recording.id).where(Recording.fixity_state != DISPOSED)
    if target == Target.recording:
        query = query.where(Recording.id == _ident(value))
    elif target == Target.case:
        query = query.where(
            Recording.id.in_(
                select(CaseLink.recording_id).where(CaseLink.case_id == _ident(value), CaseLink.unlinked_at.is_(None))
            )
        )
    elif target == Target.officer:
        query = query.where(Recording.officer_no == value)
    else:
        query = query.where(Recording.device_serial == value)
    return list(session.scalars(query.order_by(Recording.id)))


def apply_later(session: Session, ctx: ServerContext, request: Request | None) -> None:
    """Run the whole job in the background once this transaction commits (not before: it would not see it).

    Only for a request: a command-line or scheduled run applies the policy itself."""
    if request is not None:
        tasks = ctx.tasks
        event.listen(session, "after_commit", lambda _s: tasks.send("retention.apply"), once=True)


def _sync_storage(session: Session, ctx: ServerContext, ids: list[int], request: Request | None) -> None:
    if len(ids) <= SYNC_LIMIT:
        run_for(session, ctx, ids)
    else:
        apply_later(session, ctx, request)


def place_hold(
    session: Session,
    ctx: ServerContext,
    user: User,
    target: str,
    value: str,
    reason: str,
    request: Request | None = None,
) -> LegalHold:
    try:
        kind = Target(target)
    except ValueError as exc:
        raise RetentionError("unknown_target", f"a hold is placed on one of {[t.value for t in Target]}", 422) from exc
    value, reason = (value or "").strip(), need_reason(reason)
    if not value or len(value) > 64:
        raise RetentionError("bad_target", "name the case, recording, officer number or device serial", 422)
    unit = hold_unit(session, user, kind, value)
    hold = LegalHold(target=kind.value, value=value, unit_id=unit, reason=reason, placed_by_id=user.id)
    session.add(hold)
    session.flush()
    ids = covered_recordings(session, kind, value)
    audit(
        session,
        "retention.hold_placed",
        request=request,
        object_type="legal_hold",
        object_id=hold.id,
        details={
            "target": kind.value,
            "value": value,
            "unit_id": unit,
            "reason": reason,
            "recordings": ids[:200],
            "recording_count": len(ids),
            "hold": fields_of(hold, HOLD_EVIDENCE),
        },
    )
    _sync_storage(session, ctx, ids, request)
    return hold


def lift_hold(
    session: Session, ctx: ServerContext, user: User, hold_id: int, reason: str, request: Request | None = None
) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise RetentionError("unknown_hold", f"no hold {hold_id}", 404)
    if hold.lifted_at is not None:
        raise RetentionError("already_lifted", f"hold {hold_id} was lifted already")
    hold.lift_reason = need_reason(reason)
    hold.lifted_at, hold.lifted_by_id = utcnow(), user.id
    session.flush()
    ids = covered_recordings(session, Target(hold.target), hold.value)
    audit(
        session,
        "retention.hold_lifted",
        request=request,
        object_type="legal_hold",
        object_id=hold.id,
        details={
            "target": hold.target,
            "value": hold.value,
            "reason": hold.lift_reason,
            "recording_count": len(ids),
            "hold": fields_of(hold, HOLD_EVIDENCE),
        },
    )
    _sync_storage(session, ctx, ids, request)
    return hold


def holds_visible(user: User) -> Any:
    query = select(LegalHold)
    if Role(user.role) in ALL_UNITS_ROLES:
        return query
    return query.where(LegalHold.unit_id == user.unit_id)


# --- changes: extensions now, shortenings after two approvals ------------------------------------------


def _request_change(session: Session, user: User, request: Request | None, **fields: Any) -> RetentionChange:
    change = RetentionChange(requested_by_id=user.id, **fields)
    session.add(change)
    session.flush()
    audit(
        session,
        "retention.change_requested",
        request=request,
        object_type="retention_change",
        object_id=change.id,
        details={
            "subject": change.subject,
            "recording_id": change.recording_id,
            "case_id": change.case_id,
            "from": change.current,
            "to": change.proposed,
            "reason": change.reason,
        },
    )
    return change


def set_case_kind(
    session: Session,
    ctx: ServerContext,
    user: User,
    case_id: int,
    kind: str | None,
    reason: str,
    request: Request | None = None,
) -> CaseKind | RetentionChange | None:
    """Mark a case as a kind (kept for good if the policy says so) at once; unmarking it waits for approval."""
    reason = need_reason(reason)
    case = session.scalar(cases_visible(user).where(Case.id == case_id))
    if case is None:  # another unit's case answers as one that does not exist
        raise RetentionError("unknown_case", f"no case {case_id}", 404)
    if Role(user.role) not in ALL_UNITS_ROLES and case.unit_id != user.unit_id:  # shared with them: they see it
        raise RetentionError("other_unit", "you may mark only your own unit's cases", 403)
    policy, _ = current_policy(session, ctx)
    row = session.get(CaseKind, case_id)
    old = row.kind if row else None
    if kind is not None and kind not in policy.permanent_kinds:
        raise RetentionError("unknown_kind", f"the policy knows the kinds {list(policy.permanent_kinds)}", 422)
    if kind == old:
        return row
    ids = covered_recordings(session, Target.case, str(case_id))
    if old is not None and old in policy.permanent_kinds:  # footage kept for good would not be any more
        return _request_change(
            session,
            user,
            request,
            subject="case_kind",
            case_id=case_id,
            current={"kind": old},
            proposed={"kind": kind},
            reason=reason,
        )
    _write_kind(session, user, case_id, kind, reason, request)
    _sync_storage(session, ctx, ids, request)
    return session.get(CaseKind, case_id)


def _write_kind(
    session: Session, user: User | None, case_id: int, kind: str | None, reason: str, request: Request | None
) -> None:
    row = session.get(CaseKind, case_id)
    old = row.kind if row else None
    if row is not None:
        session.delete(row)
        session.flush()
    if kind is not None:
        session.add(CaseKind(case_id=case_id, kind=kind, reason=reason, set_by_id=user.id if user else None))
    session.flush()
    audit(
        session,
        "retention.case_kind_set",
        request=request,
        object_type="case",
        object_id=case_id,
        details={"from": old, "to": kind, "reason": reason},
    )


def _iso(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment else None


def _extendable(session: Session, recording_id: int, until: datetime | None, for_good: bool) -> Recording:
    """The recording an extension names, refused if unknown or disposed of, or if the date is not usable."""
    rec = session.get(Recording, recording_id)
    if rec is None:
        raise RetentionError("unknown_recording", f"no recording {recording_id}", 404)
    if rec.fixity_state == DISPOSED:
        raise RetentionError("already_disposed", f"recording {recording_id} was disposed of")
    if until is None and not for_good:
        raise RetentionError("until_required", "give the date to keep it until, or keep it for good", 422)
    if until is not None and until.tzinfo is None:
        raise RetentionError("naive_time", "give the date with its time zone", 422)
    return rec


def extend_recording(
    session: Session,
    ctx: ServerContext,
    user: User,
    recording_id: int,
    until: datetime | None,
    for_good: bool,
    reason: str,
    request: Request | None = None,
) -> RetentionState | RetentionChange:
    """Keep one recording longer than the policy (at once), or less long than a person set (after approval)."""
    reason = need_reason(reason)
    _extendable(session, recording_id, until, for_good)
    run_for(session, ctx, [recording_id])
    state = session.get(RetentionState, recording_id)
    assert state is not None
    old = {"extended_until": _iso(state.extended_until), "extended_for_good": state.extended_for_good}
    new = {"extended_until": None if for_good else _iso(until), "extended_for_good": for_good}
    if shortens_extension(state.extended_until, state.extended_for_good, until, for_good):
        return _request_change(
            session,
            user,
            request,
            subject="extension",
            recording_id=recording_id,
            current=old,
            proposed=new,
            reason=reason,
        )
    if extends_nothing(state.retain_until, state.extended_until, until, for_good):
        raise RetentionError(
            "not_longer",
            "the policy keeps it at least that long already: nothing to extend",
            422,
            retain_until=_iso(state.retain_until),
        )
    state.extended_until, state.extended_for_good = (None, True) if for_good else (until, False)
    audit(
        session,
        "retention.extension_set",
        request=request,
        object_type="recording",
        object_id=recording_id,
        details={"from": old, "to": new, "reason": reason},
    )
    run_for(session, ctx, [recording_id])
    return state


def get_change(session: Session, change_id: int) -> RetentionChange:
    change = session.get(RetentionChange, change_id)
    if change is None:
        raise RetentionError("unknown_change", f"no retention change {change_id}", 404)
    return change


def change_approvers(session: Session, change_id: int) -> list[int]:
    return list(
        session.scalars(
            select(RetentionChangeApproval.user_id)
            .where(RetentionChangeApproval.change_id == change_id)
            .order_by(RetentionChangeApproval.id)
        )
    )


def approve_change(
    session: Session, user: User, change_id: int, note: str | None, request: Request | None = None
) -> RetentionChange:
    change = get_change(session, change_id)
    if change.status != "pending":
        raise RetentionError("not_pending", f"retention change {change_id} is {change.status}")
    if user.id in change_approvers(session, change_id):
        raise RetentionError(
            "already_approved",
            "you approved this already: a second approval must come from another person",
            change_id=change_id,
        )
    session.add(RetentionChangeApproval(change_id=change_id, user_id=user.id, note=note))
    session.flush()
    audit(
        session,
        "retention.change_approved",
        request=request,
        object_type="retention_change",
        object_id=change_id,
        details={"note": note, "approvals": len(change_approvers(session, change_id))},
    )
    return change


def reject_change(
    session: Session, user: User, change_id: int, note: str | None, request: Request | None = None
) -> RetentionChange:
    change = get_change(session, change_id)
    if change.status != "pending":
        raise RetentionError("not_pending", f"retention change {change_id} is {change.status}")
    change.status, change.decided_at, change.decided_by_id = "rejected", utcnow(), user.id
    change.decision_note = need_reason(note)
    audit(
        session,
        "retention.change_rejected",
        request=request,
        object_type="retention_change",
        object_id=change_id,
        details={"note": change.decision_note},
    )
    return change


def apply_change(
    session: Session, ctx: ServerContext, user: User, change_id: int, request: Request | None = None
) -> RetentionChange:
    """Carry out a shortening once two different people approved it."""
    change = get_change(session, change_id)
    if change.status != "pending":
        raise RetentionError("not_pending", f"retention change {change_id} is {change.status}")
    approvers = set(change_approvers(session, change_id))
    if len(approvers) < APPROVALS_NEEDED:
        raise RetentionError(
            "needs_two_approvals",
            f"shortening retention needs the approval of {APPROVALS_NEEDED} different people; it has {len(approvers)}",
            change_id=change_id,
            approvals=len(approvers),
        )
    change.status, change.decided_at, change.decided_by_id = "applied", utcnow(), user.id
    session.flush()
    ids: list[int] = []
    if change.subject == "policy":
        row = RetentionPolicyVersion(
            policy=change.proposed, created_by_id=user.id, change_id=change.id, reason=change.reason
        )
        session.add(row)
        session.flush()
    elif change.subject == "case_kind":
        assert change.case_id is not None
        _write_kind(session, user, change.case_id, change.proposed.get("kind"), change.reason, request)
        ids = covered_recordings(session, Target.case, str(change.case_id))
    else:
        assert change.recording_id is not None
        ids = [change.recording_id]
        state = session.get(RetentionState, change.recording_id)
        if change.subject == "extension" and state is not None:
            until = change.proposed.get("extended_until")
            state.extended_until = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
            state.extended_for_good = bool(change.proposed.get("extended_for_good"))
    audit(
        session,
        "retention.change_applied",
        request=request,
        object_type="retention_change",
        object_id=change.id,
        details={"subject": change.subject, "to": change.proposed, "approvers": sorted(approvers)},
    )
    if change.subject == "policy":
        apply_later(session, ctx, request)
    else:
        _sync_storage(session, ctx, ids, request)
    return change
