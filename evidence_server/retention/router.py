"""/api/v1/retention: the policy, legal holds, case kinds, extensions, retention changes, the due list,
disposal requests and certificates.

Roles: legal affairs, auditors and sysadmins read everything; legal affairs manage holds, disposal
requests, extensions and case kinds; legal affairs and sysadmins propose policies and approve (two
different people) and carry out disposals and shortenings; device administrators and case handlers
place holds on their own unit's footage (and case handlers mark their unit's cases) and read their
unit's holds. Every refusal is audited (``retention.refused``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.cases.access import recordings_visible
from evidence_server.cases.models import CaseLink
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep, utcnow
from evidence_server.recordings.models import Recording
from evidence_server.retention import disposal, service
from evidence_server.retention.apply import active_holds, apply_retention, subject_of
from evidence_server.retention.models import (
    DisposalCertificate,
    DisposalRequest,
    LegalHold,
    RetentionChange,
    RetentionState,
)
from evidence_server.retention.rules import holds_on, is_due
from evidence_server.retention.schemas import (
    ApprovalOut,
    CaseKindIn,
    CertificateOut,
    ChangeOut,
    DisposalIn,
    DisposalOut,
    DueOut,
    ExtensionIn,
    HoldIn,
    HoldOut,
    NoteIn,
    PolicyIn,
    PolicyOut,
    ProposalOut,
    ReasonIn,
    RecordingRetentionOut,
    RunOut,
    StateOut,
)
from evidence_server.retention.service import RetentionError
from evidence_server.security import require_roles

router = APIRouter(prefix="/api/v1/retention", tags=["retention"])

Reader = Annotated[User, Depends(require_roles(*service.READERS))]
HoldReader = Annotated[User, Depends(require_roles(*service.HOLD_READERS))]
HoldPlacer = Annotated[User, Depends(require_roles(*service.HOLD_PLACERS))]
Manager = Annotated[User, Depends(require_roles(*service.MANAGERS))]
PolicyEditor = Annotated[User, Depends(require_roles(*service.POLICY_EDITORS))]
Approver = Annotated[User, Depends(require_roles(*service.APPROVERS))]
KindSetter = Annotated[User, Depends(require_roles(Role.legal_affairs, Role.case_handler))]

T = TypeVar("T")


def run(session: Session, request: Request, operation: Callable[[], T]) -> T:
    """Run a retention operation and commit; a refusal is undone, audited and answered with its code."""
    try:
        result = operation()
    except RetentionError as exc:
        raise service.refuse(session, request, exc) from exc
    session.commit()
    return result


# --- policy --------------------------------------------------------------------------------------------


@router.get("/policy", response_model=PolicyOut)
def get_policy(request: Request, ctx: CtxDep, user: Reader, session: SessionDep) -> PolicyOut:
    policy, row = service.current_policy(session, ctx)
    pending = list(
        session.scalars(
            select(RetentionChange.id).where(RetentionChange.subject == "policy", RetentionChange.status == "pending")
        )
    )
    return PolicyOut(policy=policy.model_dump(mode="json"), version_id=row.id if row else None, pending_changes=pending)


@router.put("/policy", response_model=ProposalOut, responses={202: {"model": ProposalOut}})
def put_policy(body: PolicyIn, request: Request, ctx: CtxDep, user: PolicyEditor, session: SessionDep) -> JSONResponse:
    """A policy that keeps nothing for less time applies at once; one that shortens anything waits for two
    approvals (answer 202 with the change to approve)."""
    out = run(
        session,
        request,
        lambda: service.propose_policy(session, ctx, user, body.policy, body.reason, request),
    )
    if isinstance(out, RetentionChange):
        return JSONResponse(ProposalOut(applied=False, change_id=out.id).model_dump(), status_code=202)
    ctx.tasks.send("retention.apply")
    return JSONResponse(ProposalOut(applied=True, version_id=out.id).model_dump())


@router.post("/run", response_model=RunOut)
def run_job(
    request: Request,
    ctx: CtxDep,
    user: Approver,
    session: SessionDep,
    seconds: Annotated[float, Query(gt=0, le=600)] = 60,
) -> RunOut:
    """Apply the retention policy now (the scheduled job does the same), for at most ``seconds``."""
    policy, _ = service.current_policy(session, ctx)
    deadline = time.monotonic() + seconds
    audit(session, "retention.run_requested", request=request, object_type="retention")
    session.commit()
    r = apply_retention(
        session, ctx.store, policy, tz=ctx.settings.default_timezone, should_stop=lambda: time.monotonic() > deadline
    )
    return RunOut(
        seen=r.seen,
        created=len(r.created),
        extended=len(r.extended),
        fixed=len(r.fixed),
        shortened=len(r.shortened),
        proposed=r.proposed,
        locked=len(r.locked),
        errors=r.errors,
        stopped=r.stopped,
    )


# --- one recording, case kinds ------------------------------------------------------------------------


@router.get("/recordings/{recording_id}", response_model=RecordingRetentionOut)
def recording_retention(recording_id: int, user: HoldReader, session: SessionDep) -> RecordingRetentionOut:
    rec = session.scalars(recordings_visible(user).where(Recording.id == recording_id)).first()
    if rec is None:
        raise HTTPException(
            404, {"code": "unknown_recording", "message": f"no recording {recording_id}, or not one you may see"}
        )
    state = session.get(RetentionState, rec.id)
    cert = disposal.certificate_of(session, rec.id)
    holds = [
        HoldOut.model_validate(h, from_attributes=True)
        for h in session.scalars(select(LegalHold).where(LegalHold.id.in_(_holds_on(session, rec))))
    ]
    return RecordingRetentionOut(
        state=StateOut.model_validate(state, from_attributes=True) if state else None,
        due=bool(
            state and is_due(state.retain_until, utcnow(), held=state.held, disposed=state.disposed_at is not None)
        ),
        holds=holds,
        certificate=cert.number if cert else None,
    )


def _holds_on(session: Session, rec: Recording) -> list[int]:
    case_ids = session.scalars(
        select(CaseLink.case_id).where(CaseLink.recording_id == rec.id, CaseLink.unlinked_at.is_(None))
    )
    return holds_on(subject_of(rec, case_ids), active_holds(session))


@router.post(
    "/recordings/{recording_id}/extension", response_model=ProposalOut, responses={202: {"model": ProposalOut}}
)
def extend(
    recording_id: int, body: ExtensionIn, request: Request, ctx: CtxDep, user: Manager, session: SessionDep
) -> JSONResponse:
    """Keep a recording longer than the policy (at once); shortening a person's extension waits for two approvals."""
    out = run(
        session,
        request,
        lambda: service.extend_recording(
            session, ctx, user, recording_id, body.until, body.for_good, body.reason, request
        ),
    )
    if isinstance(out, RetentionChange):
        return JSONResponse(ProposalOut(applied=False, change_id=out.id).model_dump(), status_code=202)
    return JSONResponse(ProposalOut(applied=True).model_dump())


@router.put("/cases/{case_id}/kind", response_model=ProposalOut, responses={202: {"model": ProposalOut}})
def set_kind(
    case_id: int, body: CaseKindIn, request: Request, ctx: CtxDep, user: KindSetter, session: SessionDep
) -> JSONResponse:
    """Mark a case as a kind kept for good (at once); unmarking it waits for two approvals."""
    out = run(
        session,
        request,
        lambda: service.set_case_kind(session, ctx, user, case_id, body.kind, body.reason, request),
    )
    if isinstance(out, RetentionChange):
        return JSONResponse(ProposalOut(applied=False, change_id=out.id).model_dump(), status_code=202)
    return JSONResponse(ProposalOut(applied=True).model_dump())


# --- holds -----------------------------------------------------------------------------------------------


@router.get("/holds", response_model=list[HoldOut])
def list_holds(user: HoldReader, session: SessionDep, active: bool = True) -> list[HoldOut]:
    query = service.holds_visible(user)
    if active:
        query = query.where(LegalHold.lifted_at.is_(None))
    return [
        HoldOut.model_validate(h, from_attributes=True)
        for h in session.scalars(query.order_by(LegalHold.id.desc()).limit(1000))
    ]


@router.post("/holds", response_model=HoldOut, status_code=201)
def place_hold(body: HoldIn, request: Request, ctx: CtxDep, user: HoldPlacer, session: SessionDep) -> HoldOut:
    hold = run(
        session,
        request,
        lambda: service.place_hold(session, ctx, user, body.target, body.value, body.reason, request),
    )
    return HoldOut.model_validate(hold, from_attributes=True)


@router.post("/holds/{hold_id}/lift", response_model=HoldOut)
def lift_hold(
    hold_id: int, body: ReasonIn, request: Request, ctx: CtxDep, user: Manager, session: SessionDep
) -> HoldOut:
    hold = run(session, request, lambda: service.lift_hold(session, ctx, user, hold_id, body.reason, request))
    return HoldOut.model_validate(hold, from_attributes=True)


# --- retention changes (shortenings) ------------------------------------------------------------------


def change_out(session: Session, change: RetentionChange) -> ChangeOut:
    out = ChangeOut.model_validate(change, from_attributes=True)
    out.approvals = service.change_approvers(session, change.id)
    return out


@router.get("/changes", response_model=list[ChangeOut])
def list_changes(user: Reader, session: SessionDep, status: str | None = "pending") -> list[ChangeOut]:
    query = select(RetentionChange).order_by(RetentionChange.id.desc()).limit(500)
    if status:
        query = query.where(RetentionChange.status == status)
    return [change_out(session, c) for c in session.scalars(query)]


@router.post("/changes/{change_id}/approve", response_model=ChangeOut)
def approve_change(change_id: int, body: NoteIn, request: Request, user: Approver, session: SessionDep) -> ChangeOut:
    change = run(session, request, lambda: service.approve_change(session, user, change_id, body.note, request))
    return change_out(session, change)


@router.post("/changes/{change_id}/reject", response_model=ChangeOut)
def reject_change(change_id: int, body: NoteIn, request: Request, user: Approver, session: SessionDep) -> ChangeOut:
    change = run(session, request, lambda: service.reject_change(session, user, change_id, body.note, request))
    return change_out(session, change)


@router.post("/changes/{change_id}/apply", response_model=ChangeOut)
def apply_change(change_id: int, request: Request, ctx: CtxDep, user: Approver, session: SessionDep) -> ChangeOut:
    change = run(session, request, lambda: service.apply_change(session, ctx, user, change_id, request))
    return change_out(session, change)


# --- due list, disposals, certificates --------------------------------------------------------------


@router.get("/due", response_model=list[DueOut])
def due_list(
    user: Reader, session: SessionDep, held: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 500
) -> list[DueOut]:
    """What is due for disposal as of the job's last run (``held=true``: due but kept by a hold)."""
    return [
        DueOut(
            recording_id=r.recording.id,
            retain_until=r.state.retain_until,
            basis=r.state.basis,
            unit_id=r.recording.unit_id,
            device_serial=r.recording.device_serial,
            officer_no=r.recording.officer_no,
            original_name=r.recording.original_name,
            requested=r.requested,
        )
        for r in disposal.due(session, held=held, limit=limit)
        if r.state.retain_until is not None
    ]


def disposal_out(session: Session, req: DisposalRequest) -> DisposalOut:
    items = disposal.items_of(session, req.id)
    return DisposalOut(
        id=req.id,
        reason=req.reason,
        status=req.status,
        requested_at=req.requested_at,
        requested_by_id=req.requested_by_id,
        decided_at=req.decided_at,
        decided_by_id=req.decided_by_id,
        decision_note=req.decision_note,
        recording_ids=[i.recording_id for i in items],
        approvals=[ApprovalOut.model_validate(a, from_attributes=True) for a in disposal.approvals_of(session, req.id)],
        skipped={str(i.recording_id): i.skip_reason or "" for i in items if i.state == "skipped"},
    )


@router.get("/disposals", response_model=list[DisposalOut])
def list_disposals(user: Reader, session: SessionDep, status: str | None = None) -> list[DisposalOut]:
    query = select(DisposalRequest).order_by(DisposalRequest.id.desc()).limit(500)
    if status:
        query = query.where(DisposalRequest.status == status)
    return [disposal_out(session, r) for r in session.scalars(query)]


@router.post("/disposals", response_model=DisposalOut, status_code=201)
def request_disposal(
    body: DisposalIn, request: Request, ctx: CtxDep, user: Manager, session: SessionDep
) -> DisposalOut:
    req = run(
        session,
        request,
        lambda: disposal.request_disposal(session, ctx, user, body.recording_ids, body.reason, request),
    )
    return disposal_out(session, req)


@router.get("/disposals/{request_id}", response_model=DisposalOut)
def get_disposal(request_id: int, request: Request, user: Reader, session: SessionDep) -> DisposalOut:
    req = run(session, request, lambda: disposal.get_request(session, request_id, pending=False))
    return disposal_out(session, req)


@router.post("/disposals/{request_id}/approve", response_model=DisposalOut)
def approve_disposal(
    request_id: int, body: NoteIn, request: Request, user: Approver, session: SessionDep
) -> DisposalOut:
    req = run(session, request, lambda: disposal.approve_disposal(session, user, request_id, body.note, request))
    return disposal_out(session, req)


@router.post("/disposals/{request_id}/reject", response_model=DisposalOut)
def reject_disposal(
    request_id: int, body: NoteIn, request: Request, user: Approver, session: SessionDep
) -> DisposalOut:
    req = run(session, request, lambda: disposal.reject_disposal(session, user, request_id, body.note, request))
    return disposal_out(session, req)


@router.post("/disposals/{request_id}/execute", response_model=list[CertificateOut])
def execute_disposal(
    request_id: int, request: Request, ctx: CtxDep, user: Approver, session: SessionDep
) -> list[CertificateOut]:
    """Remove the approved items from storage; each gets a signed disposal certificate."""
    certs = run(session, request, lambda: disposal.execute_disposal(session, ctx, user, request_id, request))
    return [CertificateOut.model_validate(c, from_attributes=True) for c in certs]


@router.get("/certificates", response_model=list[CertificateOut])
def list_certificates(
    user: Reader, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[CertificateOut]:
    return [
        CertificateOut.model_validate(c, from_attributes=True)
        for c in session.scalars(select(DisposalCertificate).order_by(DisposalCertificate.id.desc()).limit(limit))
    ]


@router.get("/certificates/{certificate_id}", response_model=CertificateOut)
def get_certificate(certificate_id: int, request: Request, user: Reader, session: SessionDep) -> CertificateOut:
    cert = session.get(DisposalCertificate, certificate_id)
    if cert is None:
        raise HTTPException(404, {"code": "unknown_certificate", "message": f"no certificate {certificate_id}"})
    audit(session, "retention.certificate_view", request=request, object_type="disposal_certificate", object_id=cert.id)
    session.commit()
    return CertificateOut.model_validate(cert, from_attributes=True)
