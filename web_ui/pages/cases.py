"""The case pages: the case list and a case (links, shares, export), finding footage, the transfers
still missing their task and the form that records it, and the case parts of a recording's page.

Every rule lives in ``evidence_server.cases``; these pages collect input and show results.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.cases import (
    access,
    building,
    handover,
    linking,
    listing,
    package_links,
    rules,
    search,
    service,
)
from evidence_server.cases.models import Case
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep, utcnow
from evidence_server.media.derive import derived_of, never_derived, thumbnails_made
from evidence_server.recordings.models import Recording
from evidence_server.security import require_roles
from web_ui import csrf, i18n
from web_ui.nav import CASE_VIEWERS, SEARCH_VIEWERS, TASK_VIEWERS
from web_ui.render import render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(require_roles(*CASE_VIEWERS))]
Manager = Annotated[User, Depends(require_roles(*access.MANAGERS))]
Exporter = Annotated[User, Depends(require_roles(*access.EXPORTERS))]
Searcher = Annotated[User, Depends(require_roles(*SEARCH_VIEWERS))]
TaskViewer = Annotated[User, Depends(require_roles(*TASK_VIEWERS))]
TaskSetter = Annotated[User, Depends(require_roles(*access.TASK_SETTERS))]
Text = Annotated[str, Form()]
PAGE_SIZE = 50


def error_text(request: Request, exc: service.CaseError) -> str:
    lang = i18n.request_lang(request)
    key = f"case_err.{exc.code}"
    return (
        i18n.translate(lang, key)
        if key in i18n.catalogue(lang)
        else i18n.translate(lang, "case_err.generic", message=exc.message)
    )


def pattern(request: Request) -> str:
    ctx = context_of(request)
    return str(ctx.settings.case_number_pattern)


def tz_of(request: Request) -> ZoneInfo:
    ctx = context_of(request)
    return ZoneInfo(ctx.settings.default_timezone)


def local_time(value: str, tz: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` field (wall time of the site's zone) as an aware time; empty or bad: None."""
    try:
        moment = datetime.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None
    return moment.replace(tzinfo=tz) if moment is not None and moment.tzinfo is None else moment


def parse_officers(text: str) -> list[dict[str, str]]:
    """One officer a line (or separated by ；/;): ``102345 张三``."""
    out = []
    for part in text.replace("；", "\n").replace(";", "\n").splitlines():
        bits = part.strip().split(None, 1)
        if bits:
            out.append({"officer_no": bits[0], "name": bits[1] if len(bits) > 1 else ""})
    return out


def attempt(
    request: Request, session: Session, operation: Callable[[], Any], done: str, again: Callable[[str], Response]
) -> Response:
    """Run a case operation from a form: commit and go to ``done``, or show the page again with the refusal."""
    try:
        operation()
    except service.CaseError as exc:
        session.rollback()
        audit(session, "case.refused", request=request, details={"code": exc.code, "path": request.url.path})
        session.commit()
        return again(error_text(request, exc))
    session.commit()
    return RedirectResponse(done, status_code=303)


def thumbnails(session: Session, ids: list[int]) -> set[int]:
    """The recordings among ``ids`` whose thumbnail is made (the others show a placeholder)."""
    return thumbnails_made(session, ids)


def pages_of(found: search.Results, page_size: int = PAGE_SIZE) -> int:
    """How many pages a list of search results has, as far as it was counted (one more while there are more)."""
    return max(1, -(-found.total // page_size)) + (1 if found.more else 0)


def backfill(request: Request, session: Session, ids: list[int]) -> None:
    """Recordings ingested before derived media existed get theirs made now (the task is idempotent)."""
    ctx = context_of(request)
    for rid in never_derived(session, ids):
        ctx.tasks.send("media.derive_recording", rid)


# --- the case list -----------------------------------------------------------------------------------


@router.get("/cases")
def cases_page(request: Request, user: Viewer, session: SessionDep, q: str = "", status: str = "") -> Response:
    return cases_view(request, session, user, q=q, status=status)


def cases_view(
    request: Request,
    session: Session,
    user: User,
    *,
    q: str = "",
    status: str = "",
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = listing.cases(session, user, q, status)
    counts = listing.recording_counts(session, [c.id for c in rows])
    units = accounts.unit_names(session)
    return render(
        request,
        "cases.html",
        user=user,
        cases=rows,
        counts=counts,
        units=units,
        q=q,
        status=status,
        manager=Role(user.role) in access.MANAGERS,
        error=error,
        values=values or {},
        status_code=status_code,
    )


@router.post("/cases")
def create_submit(
    request: Request,
    user: Manager,
    session: SessionDep,
    number: Text = "",
    name: Text = "",
    enforcement_matter: Text = "",
    officers: Text = "",
    csrf_token: Text = "",
) -> Response:
    bad = csrf.refused(request, session, user, csrf_token)
    if bad:
        return bad
    values = {"number": number, "name": name, "enforcement_matter": enforcement_matter, "officers": officers}
    try:
        case = service.create_case(
            session,
            user,
            number=number,
            pattern=pattern(request),
            request=request,
            fields=service.CaseFields(
                name=name, enforcement_matter=enforcement_matter, officers=parse_officers(officers)
            ),
        )
    except service.CaseError as exc:
        session.rollback()
        audit(session, "case.refused", request=request, details={"code": exc.code, "path": request.url.path})
        session.commit()
        return cases_view(request, session, user, error=error_text(request, exc), values=values, status_code=422)
    session.commit()
    return RedirectResponse(f"/cases/{case.id}?done=created", status_code=303)


# --- one case ----------------------------------------------------------------------------------------


@router.get("/cases/{case_id}")
def case_page(case_id: int, request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    try:
        case = service.get_case(session, user, case_id)
    except service.CaseError:
        return render(request, "error.html", user=user, status_code=404, message="case_err.unknown_case")
    audit(session, "case.view", request=request, object_type="case", object_id=case.id, details={"via": "web"})
    session.commit()
    return case_view(request, session, user, case, done=done)


def case_view(
    request: Request,
    session: Session,
    user: User,
    case: Case,
    *,
    done: str = "",
    error: str | None = None,
    status_code: int = 200,
    made_link: str | None = None,
) -> Response:
    recs = service.recordings_of_case(session, user, case.id)
    history = service.links_of_case(session, case.id, history=True)
    shares = listing.shares_of(session, case.id)
    people = accounts.everyone(session)
    units = accounts.unit_names(session)
    return render(
        request,
        "case.html",
        user=user,
        case=case,
        recordings=recs,
        history=history,
        shares=shares,
        people=people,
        units=units,
        thumbs=thumbnails(session, [r.id for r in recs]),
        links={lk.recording_id: lk for lk in history if lk.unlinked_at is None},
        manager=Role(user.role) in access.MANAGERS,
        exporter=Role(user.role) in access.EXPORTERS,
        handovers=handover.receipts_of(session, case) if Role(user.role) in access.EXPORTERS else [],
        package_links=package_links.links_of(session, case) if Role(user.role) in access.EXPORTERS else [],
        made_link=made_link,
        done=done,
        error=error,
        status_code=status_code,
    )


def _case_or_error(request: Request, session: Session, user: User, case_id: int) -> Case | Response:
    try:
        return service.get_case(session, user, case_id)
    except service.CaseError:
        return render(request, "error.html", user=user, status_code=404, message="case_err.unknown_case")


def case_form(
    request: Request,
    session: Session,
    user: User,
    case_id: int,
    token: str,
    operation: Callable[[Case], Any],
    done: str,
) -> Response:
    bad = csrf.refused(request, session, user, token)
    if bad:
        return bad
    case = _case_or_error(request, session, user, case_id)
    if isinstance(case, Response):
        return case
    return attempt(
        request,
        session,
        lambda: operation(case),
        f"/cases/{case.id}?done={quote(done)}",
        lambda message: case_view(request, session, user, case, error=message, status_code=422),
    )


@router.post("/cases/{case_id}")
def edit_submit(
    case_id: int,
    request: Request,
    user: Manager,
    session: SessionDep,
    name: Text = "",
    enforcement_matter: Text = "",
    officers: Text = "",
    status: Text = "",
    csrf_token: Text = "",
) -> Response:
    return case_form(
        request,
        session,
        user,
        case_id,
        csrf_token,
        lambda case: service.update_case(
            session,
            user,
            case,
            service.CaseFields(
                name=name,
                enforcement_matter=enforcement_matter,
                officers=parse_officers(officers),
                status=status or None,
            ),
            request=request,
        ),
        "updated",
    )


@router.post("/cases/{case_id}/links")
def link_submit(
    case_id: int,
    request: Request,
    user: Manager,
    session: SessionDep,
    recording_id: Text = "",
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    def operation(case: Case) -> None:  # a file name, as a person knows it (or a record number)
        rec = building.recording_named(session, user, recording_id)
        service.link_recording(session, user, case, rec.id, reason=reason, request=request)

    return case_form(request, session, user, case_id, csrf_token, operation, "linked")


@router.post("/cases/{case_id}/links/{recording_id}/unlink")
def unlink_submit(
    case_id: int,
    recording_id: int,
    request: Request,
    user: Manager,
    session: SessionDep,
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    return case_form(
        request,
        session,
        user,
        case_id,
        csrf_token,
        lambda case: service.unlink(session, user, case, recording_id, reason=reason, request=request),
        "unlinked",
    )


@router.post("/cases/{case_id}/shares")
def share_submit(
    case_id: int,
    request: Request,
    user: Manager,
    session: SessionDep,
    username: Text = "",
    unit_code: Text = "",
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    def operation(case: Case) -> None:
        who = accounts.by_username(session, username)
        unit = accounts.by_unit_code(session, unit_code)
        if (username.strip() and who is None) or (unit_code.strip() and unit is None):
            raise service.CaseError("unknown_share_target", "no such user or unit", 404)
        service.share(
            session,
            user,
            case,
            user_id=who.id if who else None,
            unit_id=unit.id if unit else None,
            reason=reason,
            request=request,
        )

    return case_form(request, session, user, case_id, csrf_token, operation, "shared")


@router.post("/cases/{case_id}/handovers")
def handover_submit(
    case_id: int,
    request: Request,
    user: Exporter,
    session: SessionDep,
    recipient_kind: Text = "",
    organisation: Text = "",
    person: Text = "",
    id_number: Text = "",
    package_digest: Text = "",
    note: Text = "",
    csrf_token: Text = "",
) -> Response:
    """Record a package handed to a procuratorate, a court or a lawyer: a signed 移交回执 (issue 19)."""

    def operation(case: Case) -> None:
        fields = {"organisation": (organisation, 300), "person": (person, 200), "id_number": (id_number, 64)}
        if any(not v.strip() or len(v) > n for v, n in fields.values()) or len(note) > 1000:
            raise service.CaseError("bad_recipient", "organisation, person and ID are required", 422)
        recipient = handover.Recipient(recipient_kind, organisation.strip(), person.strip(), id_number.strip())
        handover.hand_over(
            session,
            context_of(request).signer,
            user,
            case,
            recipient=recipient,
            package_digest=package_digest,
            note=note.strip() or None,
            request=request,
            settings=context_of(request).settings,
        )

    return case_form(request, session, user, case_id, csrf_token, operation, "handed_over")


@router.post("/cases/{case_id}/package-links")
def package_link_submit(
    case_id: int,
    request: Request,
    user: Exporter,
    session: SessionDep,
    recipient: Text = "",
    days: Text = "",
    csrf_token: Text = "",
) -> Response:
    """A link to the case's package for someone without an account: its address is shown on this answer only."""
    bad = csrf.refused(request, session, user, csrf_token)
    if bad:
        return bad
    case = _case_or_error(request, session, user, case_id)
    if isinstance(case, Response):
        return case
    made: list[str] = []

    def operation() -> None:
        if not recipient.strip() or len(recipient) > 300 or not days.strip().isdigit():
            raise service.CaseError("bad_link", "a recipient and a number of days are needed", 422)
        expires = utcnow() + timedelta(days=int(days))
        _, token = package_links.make_link(
            session, user, case, recipient=recipient.strip(), expires_at=expires, request=request
        )
        made.append(f"{str(request.base_url).rstrip('/')}/api/v1/package-links/{token}/package")

    again = lambda message: case_view(request, session, user, case, error=message, status_code=422)  # noqa: E731
    answer = attempt(request, session, operation, f"/cases/{case.id}", again)
    if not made:
        return answer
    return case_view(request, session, user, case, done="package_link", made_link=made[0])


@router.post("/cases/{case_id}/package-links/{link_id}/revoke")
def package_link_revoke(
    case_id: int, link_id: int, request: Request, user: Exporter, session: SessionDep, csrf_token: Text = ""
) -> Response:
    return case_form(
        request,
        session,
        user,
        case_id,
        csrf_token,
        lambda case: package_links.revoke(session, user, case, link_id, request),
        "package_link_revoked",
    )


@router.post("/cases/{case_id}/shares/{share_id}/revoke")
def unshare_submit(
    case_id: int, share_id: int, request: Request, user: Manager, session: SessionDep, csrf_token: Text = ""
) -> Response:
    return case_form(
        request,
        session,
        user,
        case_id,
        csrf_token,
        lambda case: service.unshare(session, user, case, share_id, request=request),
        "unshared",
    )


# --- finding footage ---------------------------------------------------------------------------------


@router.get("/search")
def search_page(
    request: Request,
    user: Searcher,
    session: SessionDep,
    case_number: str = "",
    case_match: str = "exact",
    case_name: str = "",
    officer: str = "",
    device_serial: str = "",
    unit_id: str = "",
    started_from: str = "",
    started_to: str = "",
    enforcement_matter: str = "",
    file_name: str = "",
    important: str = "",
    page: int = 1,
) -> Response:
    form = {
        "important": important if important in ("1", "0") else "",
        "file_name": file_name,
        "case_number": case_number,
        "case_match": case_match if case_match == "prefix" else "exact",
        "case_name": case_name,
        "officer": officer,
        "device_serial": device_serial,
        "unit_id": unit_id,
        "started_from": started_from,
        "started_to": started_to,
        "enforcement_matter": enforcement_matter,
    }
    units = accounts.units(session)
    asked = any(v for k, v in form.items() if k != "case_match")
    context: dict[str, Any] = {
        "form": form,
        "units": units,
        "asked": asked,
        "results": None,
        "error": None,
        "page": max(1, page),
        "pages": 1,
        "page_query": urlencode(form),
        "cases_to_add": [],
    }
    if asked:
        tz = tz_of(request)
        filters = search.Filters(
            case_number,
            form["case_match"],
            case_name,
            officer,
            device_serial,
            int(unit_id) if unit_id.isdigit() else None,
            local_time(started_from, tz),
            local_time(started_to, tz),
            enforcement_matter,
            file_name,
            important={"1": True, "0": False}.get(form["important"]),
        )
        try:
            found = search.search(
                session, user, filters, pattern(request), limit=PAGE_SIZE, offset=(context["page"] - 1) * PAGE_SIZE
            )
        except service.CaseError as exc:
            context["error"] = error_text(request, exc)
            audit(session, "recording.search_refused", request=request, details={"code": exc.code, "via": "web"})
            session.commit()
            return render(request, "search.html", user=user, **context)  # the page itself is fine: 200
        ids = [r.id for r in found.recordings]
        search.record_search(session, request, filters, found, via="web")
        session.commit()
        backfill(request, session, ids)
        context.update(
            results=found,
            thumbs=thumbnails(session, ids),
            pages=pages_of(found),
            cases_to_add=building.linkable_cases(session, user),
        )
    return render(request, "search.html", user=user, **context)


# --- the transfer's task -----------------------------------------------------------------------------


@router.get("/transfers/incomplete")
def incomplete_page(request: Request, ctx: CtxDep, user: TaskViewer, session: SessionDep) -> Response:
    settings = ctx.settings
    rows = linking.incomplete(session, user, settings)
    return render(
        request,
        "incomplete.html",
        user=user,
        rows=rows,
        grace=settings.transfer_task_grace_hours,
        setter=Role(user.role) in access.TASK_SETTERS,
    )


def task_view(
    request: Request,
    session: Session,
    user: User,
    transfer: Any,
    *,
    done: str = "",
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    case = listing.case_by_id(session, transfer.case_id)
    open_cases = listing.open_cases(session, user)
    recs = linking.recordings_of_transfer(session, transfer.id)
    return render(
        request,
        "transfer_task.html",
        user=user,
        transfer=transfer,
        case=case,
        open_cases=open_cases,
        recordings=recs,
        missing=rules.missing_task(
            rules.TransferTask(transfer.id, transfer.docked_at, transfer.enforcement_matter, transfer.case_id)
        ),
        setter=Role(user.role) in access.TASK_SETTERS,
        done=done,
        error=error,
        values=values
        or {"enforcement_matter": transfer.enforcement_matter or "", "case_number": case.number if case else ""},
        status_code=status_code,
    )


@router.get("/transfers/{transfer_id}/task")
def task_page(transfer_id: str, request: Request, user: TaskViewer, session: SessionDep, done: str = "") -> Response:
    try:
        transfer = linking.get_transfer(session, user, transfer_id)
    except service.CaseError:
        return render(request, "error.html", user=user, status_code=404, message="case_err.unknown_transfer")
    return task_view(request, session, user, transfer, done=done)


@router.post("/transfers/{transfer_id}/task")
def task_submit(
    transfer_id: str,
    request: Request,
    user: TaskSetter,
    session: SessionDep,
    enforcement_matter: Text = "",
    case_number: Text = "",
    csrf_token: Text = "",
) -> Response:
    bad = csrf.refused(request, session, user, csrf_token)
    if bad:
        return bad
    try:
        transfer = linking.get_transfer(session, user, transfer_id)
    except service.CaseError:
        return render(request, "error.html", user=user, status_code=404, message="case_err.unknown_transfer")
    values = {"enforcement_matter": enforcement_matter, "case_number": case_number}
    return attempt(
        request,
        session,
        lambda: linking.set_transfer_task(
            session,
            user,
            transfer,
            enforcement_matter=enforcement_matter,
            case_number=case_number,
            pattern=pattern(request),
            request=request,
        ),
        f"/transfers/{transfer.id}/task?done=saved",
        lambda message: task_view(request, session, user, transfer, error=message, values=values, status_code=422),
    )


# --- the case parts of a recording's page -------------------------------------------------------------


def recording_extras(request: Request, session: Session, user: User, rec: Recording) -> dict[str, Any]:
    """What the recording page shows besides the recording: how to play it, its cases, its derived
    files and the officer's day around it."""
    ctx = context_of(request)
    derived = derived_of(session, rec.id)
    proxy = derived.get("proxy")
    use_proxy = proxy is not None and proxy.state == "done"
    if "thumbnail" not in derived:
        backfill(request, session, [rec.id])
    return {
        "play_src": f"/api/v1/recordings/{rec.id}/{'proxy' if use_proxy else 'content'}",
        "playing_proxy": use_proxy,
        "derived": derived,
        "rec_cases": service.cases_of_recording(session, user, rec.id),
        "day": search.officer_day(session, user, rec, ctx.settings),
    }
