"""The retention pages: the policy, legal holds, the due list, approvals (disposals and shortenings), and
disposal certificates.

Every rule lives in ``evidence_server.retention``; these pages collect input and show results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep
from evidence_server.retention import disposal, listing, service
from evidence_server.retention.models import (
    RetentionChange,
)
from evidence_server.retention.rules import Target
from evidence_server.retention.service import RetentionError
from evidence_server.security import require_roles
from web_ui import csrf, i18n
from web_ui.nav import HOLD_VIEWERS, RETENTION_VIEWERS
from web_ui.render import render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(require_roles(*RETENTION_VIEWERS))]
HoldViewer = Annotated[User, Depends(require_roles(*HOLD_VIEWERS))]
HoldPlacer = Annotated[User, Depends(require_roles(*service.HOLD_PLACERS))]
Manager = Annotated[User, Depends(require_roles(*service.MANAGERS))]
PolicyEditor = Annotated[User, Depends(require_roles(*service.POLICY_EDITORS))]
Approver = Annotated[User, Depends(require_roles(*service.APPROVERS))]
Text = Annotated[str, Form()]
#: what ``?done=`` may say after a form (anything else shows nothing)
DONE = ("saved", "requested", "placed", "lifted", "approve", "reject", "execute", "apply")


def error_text(request: Request, exc: RetentionError) -> str:
    lang = i18n.request_lang(request)
    key = f"retention_err.{exc.code}"
    return (
        i18n.translate(lang, key)
        if key in i18n.catalogue(lang)
        else i18n.translate(lang, "retention_err.generic", message=exc.message)
    )


def attempt(
    request: Request,
    session: Session,
    user: User,
    token: str,
    operation: Callable[[], Any],
    done: str,
    again: Callable[[str], Response],
) -> Response:
    """Run a retention operation from a form: commit and go to ``done``, or show the page again with the
    refusal (which is audited)."""
    bad = csrf.refused(request, session, user, token)
    if bad:
        return bad
    try:
        operation()
    except RetentionError as exc:
        service.refuse(session, request, exc)
        return again(error_text(request, exc))
    session.commit()
    return RedirectResponse(done, status_code=303)


def done_of(value: str) -> str:
    return value if value in DONE else ""


def role_in(user: User, roles: tuple[Role, ...]) -> bool:
    return Role(user.role) in roles


# --- the policy --------------------------------------------------------------------------------------------


@router.get("/retention")
def policy_page(request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    return policy_view(request, session, user, done=done)


def policy_view(
    request: Request, session: Session, user: User, *, done: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    ctx = context_of(request)
    policy, row = service.current_policy(session, ctx)
    history = listing.policy_history(session)
    lang = i18n.request_lang(request)
    kind_labels = {
        k: i18n.translate(lang, f"case_kind.{k}")
        for k in policy.permanent_kinds
        if f"case_kind.{k}" in i18n.catalogue(lang)
    }
    return render(
        request,
        "retention_policy.html",
        user=user,
        policy=policy,
        version=row,
        history=history,
        people=accounts.everyone(session),
        editor=role_in(user, service.POLICY_EDITORS),
        kind_labels=kind_labels,
        done=done_of(done),
        error=error,
        status_code=status_code,
    )


@router.post("/retention/policy")
def policy_submit(
    request: Request,
    ctx: CtxDep,
    user: PolicyEditor,
    session: SessionDep,
    unlinked_months: Text = "",
    closed_case_years: Text = "",
    permanent_kinds: Text = "",
    lock_horizon_days: Text = "",
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    def number(text: str) -> int | str:
        return int(text) if text.strip().lstrip("-").isdigit() else text

    data: dict[str, Any] = {
        "unlinked_months": number(unlinked_months),
        "closed_case_years": number(closed_case_years),
        "permanent_kinds": [k.strip() for k in permanent_kinds.replace("，", ",").split(",") if k.strip()],
        "lock_horizon_days": number(lock_horizon_days),
    }
    outcome: dict[str, str] = {}

    def propose() -> None:
        out = service.propose_policy(session, ctx, user, data, reason, request)
        outcome["done"] = "requested" if isinstance(out, RetentionChange) else "saved"
        if not isinstance(out, RetentionChange):
            service.apply_later(session, ctx, request)

    response = attempt(
        request,
        session,
        user,
        csrf_token,
        propose,
        "/retention",
        lambda e: policy_view(request, session, user, error=e, status_code=422),
    )
    if outcome:
        response.headers["location"] = f"/retention?done={outcome['done']}"
    return response


# --- holds --------------------------------------------------------------------------------------------------


@router.get("/retention/holds")
def holds_page(request: Request, user: HoldViewer, session: SessionDep, done: str = "") -> Response:
    return holds_view(request, session, user, done=done)


def holds_view(
    request: Request,
    session: Session,
    user: User,
    *,
    done: str = "",
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = listing.holds(session, user)
    units = accounts.unit_names(session)
    return render(
        request,
        "retention_holds.html",
        user=user,
        holds=rows,
        units=units,
        people=accounts.everyone(session),
        targets=[t.value for t in Target],
        placer=role_in(user, service.HOLD_PLACERS),
        lifter=role_in(user, service.MANAGERS),
        done=done_of(done),
        error=error,
        values=values or {},
        status_code=status_code,
    )


@router.post("/retention/holds")
def hold_submit(
    request: Request,
    ctx: CtxDep,
    user: HoldPlacer,
    session: SessionDep,
    target: Text = "",
    value: Text = "",
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    values = {"target": target, "value": value, "reason": reason}
    return attempt(
        request,
        session,
        user,
        csrf_token,
        lambda: service.place_hold(session, ctx, user, target, value, reason, request),
        "/retention/holds?done=placed",
        lambda e: holds_view(request, session, user, error=e, values=values, status_code=422),
    )


@router.post("/retention/holds/{hold_id}/lift")
def lift_submit(
    hold_id: int,
    request: Request,
    ctx: CtxDep,
    user: Manager,
    session: SessionDep,
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    return attempt(
        request,
        session,
        user,
        csrf_token,
        lambda: service.lift_hold(session, ctx, user, hold_id, reason, request),
        "/retention/holds?done=lifted",
        lambda e: holds_view(request, session, user, error=e, status_code=422),
    )


# --- the due list -------------------------------------------------------------------------------------------


@router.get("/retention/due")
def due_page(request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    return due_view(request, session, user, done=done)


def due_view(
    request: Request, session: Session, user: User, *, done: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    units = accounts.unit_names(session)
    return render(
        request,
        "retention_due.html",
        user=user,
        rows=disposal.due(session),
        held=disposal.due(session, held=True, limit=200),
        awaiting_review=disposal.awaiting_review(session, limit=200),
        units=units,
        manager=role_in(user, service.MANAGERS),
        done=done_of(done),
        error=error,
        status_code=status_code,
    )


@router.post("/retention/disposals")
def disposal_submit(
    request: Request,
    ctx: CtxDep,
    user: Manager,
    session: SessionDep,
    recording_ids: Annotated[list[str], Form()] = [],  # noqa: B006  (FastAPI form default)
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    ids = [int(v) for v in recording_ids if v.strip().isdigit()]
    return attempt(
        request,
        session,
        user,
        csrf_token,
        lambda: disposal.request_disposal(session, ctx, user, ids, reason, request),
        "/retention/approvals?done=requested",
        lambda e: due_view(request, session, user, error=e, status_code=422),
    )


# --- approvals ------------------------------------------------------------------------------------------------


@router.get("/retention/approvals")
def approvals_page(request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    return approvals_view(request, session, user, done=done)


def approvals_view(
    request: Request, session: Session, user: User, *, done: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    requests = listing.disposal_requests(session)
    changes = listing.retention_changes(session)
    return render(
        request,
        "retention_approvals.html",
        user=user,
        requests=requests,
        changes=changes,
        items={r.id: [i.recording_id for i in disposal.items_of(session, r.id)] for r in requests},
        skipped={r.id: disposal.skipped_items(session, r.id) for r in requests},
        approvals={r.id: [a.user_id for a in disposal.approvals_of(session, r.id)] for r in requests},
        change_approvals={c.id: service.change_approvers(session, c.id) for c in changes},
        people=accounts.everyone(session),
        approver=role_in(user, service.APPROVERS),
        needed=service.APPROVALS_NEEDED,
        done=done_of(done),
        error=error,
        status_code=status_code,
    )


@router.post("/retention/disposals/{request_id}/{decision}")
def disposal_decide(
    request_id: int,
    decision: str,
    request: Request,
    ctx: CtxDep,
    user: Approver,
    session: SessionDep,
    note: Text = "",
    csrf_token: Text = "",
) -> Response:
    operations: dict[str, Callable[[], Any]] = {
        "approve": lambda: disposal.approve_disposal(session, user, request_id, note or None, request),
        "reject": lambda: disposal.reject_disposal(session, user, request_id, note or None, request),
        "execute": lambda: disposal.execute_disposal(session, ctx, user, request_id, request),
    }
    operation = operations.get(decision, lambda: _unknown(decision))
    return attempt(
        request,
        session,
        user,
        csrf_token,
        operation,
        f"/retention/approvals?done={decision}",
        lambda e: approvals_view(request, session, user, error=e, status_code=422),
    )


@router.post("/retention/changes/{change_id}/{decision}")
def change_decide(
    change_id: int,
    decision: str,
    request: Request,
    ctx: CtxDep,
    user: Approver,
    session: SessionDep,
    note: Text = "",
    csrf_token: Text = "",
) -> Response:
    operations: dict[str, Callable[[], Any]] = {
        "approve": lambda: service.approve_change(session, user, change_id, note or None, request),
        "reject": lambda: service.reject_change(session, user, change_id, note or None, request),
        "apply": lambda: service.apply_change(session, ctx, user, change_id, request),
    }
    operation = operations.get(decision, lambda: _unknown(decision))
    return attempt(
        request,
        session,
        user,
        csrf_token,
        operation,
        f"/retention/approvals?done={decision}",
        lambda e: approvals_view(request, session, user, error=e, status_code=422),
    )


def _unknown(decision: str) -> None:
    raise RetentionError("unknown_decision", f"no such decision: {decision[:20]}", 404)


# --- certificates ---------------------------------------------------------------------------------------------


@router.get("/retention/certificates")
def certificates_page(request: Request, user: Viewer, session: SessionDep) -> Response:
    rows = listing.certificates(session)
    return render(request, "retention_certificates.html", user=user, certificates=rows, done="", error=None)


@router.get("/retention/certificates/{certificate_id}")
def certificate_page(certificate_id: int, request: Request, user: Viewer, session: SessionDep) -> Response:
    cert = listing.certificate(session, certificate_id)
    if cert is None:
        return render(request, "error.html", user=user, status_code=404, message="retention_err.unknown_certificate")
    audit(
        session,
        "retention.certificate_view",
        request=request,
        object_type="disposal_certificate",
        object_id=cert.id,
        details={"via": "web"},
    )
    session.commit()
    return render(request, "retention_certificate.html", user=user, cert=cert, doc=cert.document, done="", error=None)
