"""/api/v1/cases (cases, links, shares, court packages), /api/v1/search, and the transfer task at the dock.

Roles: everyone reads cases scoped by ``access.cases_visible``; case handlers (and sysadmins) open,
edit, link and share; case handlers, legal affairs and sysadmins export; officers, device
administrators, case handlers and sysadmins record a transfer's matter and case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import func, select

from evidence_server.accounts.models import User
from evidence_server.audit import tally
from evidence_server.audit.service import record as audit
from evidence_server.cases import (
    access,
    export,
    handover,
    linking,
    lists,
    numbers,
    package_links,
    rules,
    search,
    service,
)
from evidence_server.cases.models import Case, CaseShare
from evidence_server.cases.schemas import (
    CaseIn,
    CaseOut,
    CasePage,
    CasePatch,
    FoundRecording,
    HandoverIn,
    IncompleteOut,
    IssuedOut,
    LinkIn,
    LinkOut,
    PackageLinkIn,
    PackageLinkMade,
    PackageLinkOut,
    ReasonIn,
    SearchOut,
    ShareIn,
    ShareOut,
    TaskIn,
    TaskOut,
)
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep
from evidence_server.extraction import issue
from evidence_server.extraction.models import IssuedDocument
from evidence_server.recordings.models import Recording
from evidence_server.security import public_credentials, require_roles

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
search_router = APIRouter(prefix="/api/v1/search", tags=["cases"])
tasks_router = APIRouter(prefix="/api/v1/transfers", tags=["cases"])
shared_router = APIRouter(prefix="/api/v1/package-links", tags=["cases"])

Reader = Annotated[User, Depends(require_roles(*access.READERS))]
Manager = Annotated[User, Depends(require_roles(*access.MANAGERS))]
Exporter = Annotated[User, Depends(require_roles(*access.EXPORTERS))]
Searcher = Annotated[User, Depends(require_roles(*access.SEARCHERS))]
TaskSetter = Annotated[User, Depends(require_roles(*access.TASK_SETTERS))]

T = TypeVar("T")


def http_error(exc: service.CaseError) -> HTTPException:
    return HTTPException(exc.status, {"code": exc.code, "message": exc.message})


def run(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except service.CaseError as exc:
        raise http_error(exc) from exc


def pattern_of(request: Request) -> str:
    ctx = context_of(request)
    return str(ctx.settings.case_number_pattern)


def case_out(case: Case) -> CaseOut:
    return CaseOut.model_validate(case, from_attributes=True)


@router.get("", response_model=CasePage)
def list_cases(
    user: Reader,
    session: SessionDep,
    q: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """Cases you may see, newest first; ``q`` matches the beginning of the number or part of the name."""
    query = access.cases_visible(user)
    if q and q.strip():
        text = q.strip()
        query = query.where(
            Case.number.startswith(numbers.normalize(text), autoescape=True)
            | func.lower(Case.name).contains(text.lower(), autoescape=True)
        )
    if status:
        query = query.where(Case.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit).offset(offset))
    return CasePage(total=total, items=[case_out(c) for c in rows])


@router.post("", response_model=CaseOut, status_code=201)
def create_case(body: CaseIn, request: Request, user: Manager, session: SessionDep) -> CaseOut:
    fields = service.CaseFields(
        name=body.name,
        enforcement_matter=body.enforcement_matter,
        officers=[o.model_dump() for o in body.officers],
        opened_on=body.opened_on,
    )
    case = run(
        lambda: service.create_case(
            session,
            user,
            number=body.number,
            fields=fields,
            pattern=pattern_of(request),
            unit_id=body.unit_id,
            request=request,
        )
    )
    session.commit()
    return case_out(case)


@router.get("/by-number/{number}", response_model=CaseOut)
def case_by_number(number: str, request: Request, user: Reader, session: SessionDep) -> CaseOut:
    """The case with this number (written in any of the usual bracket styles)."""
    case = run(lambda: service.find_by_number(session, user, number, pattern_of(request)))
    audit(session, "case.view", request=request, object_type="case", object_id=case.id)
    session.commit()
    return case_out(case)


@router.get("/{case_id}", response_model=CaseOut)
def get_case(case_id: int, request: Request, user: Reader, session: SessionDep) -> CaseOut:
    case = run(lambda: service.get_case(session, user, case_id))
    audit(session, "case.view", request=request, object_type="case", object_id=case.id)
    session.commit()
    return case_out(case)


@router.patch("/{case_id}", response_model=CaseOut)
def update_case(case_id: int, body: CasePatch, request: Request, user: Manager, session: SessionDep) -> CaseOut:
    case = run(lambda: service.get_case(session, user, case_id))
    fields = service.CaseFields(
        name=body.name if body.name is not None else case.name,
        enforcement_matter=body.enforcement_matter if body.enforcement_matter is not None else case.enforcement_matter,
        officers=[o.model_dump() for o in body.officers] if body.officers is not None else case.officers,
        opened_on=body.opened_on,
        closed_on=body.closed_on,
        status=body.status,
    )
    run(lambda: service.update_case(session, user, case, fields, request=request))
    session.commit()
    return case_out(case)


@router.get("/{case_id}/links", response_model=list[LinkOut])
def list_links(case_id: int, user: Reader, session: SessionDep, history: bool = False) -> list[LinkOut]:
    """The case's links; ``history=true`` adds the unlinked ones with who, when and why."""
    case = run(lambda: service.get_case(session, user, case_id))
    return [
        LinkOut.model_validate(lk, from_attributes=True)
        for lk in service.links_of_case(session, case.id, history=history)
    ]


@router.post("/{case_id}/links", response_model=LinkOut, status_code=201)
def add_link(case_id: int, body: LinkIn, request: Request, user: Manager, session: SessionDep) -> LinkOut:
    case = run(lambda: service.get_case(session, user, case_id))
    row = run(
        lambda: service.link_recording(session, user, case, body.recording_id, reason=body.reason, request=request)
    )
    session.commit()
    return LinkOut.model_validate(row, from_attributes=True)


@router.post("/{case_id}/links/{recording_id}/unlink", response_model=LinkOut)
def remove_link(
    case_id: int, recording_id: int, body: ReasonIn, request: Request, user: Manager, session: SessionDep
) -> LinkOut:
    case = run(lambda: service.get_case(session, user, case_id))
    row = run(lambda: service.unlink(session, user, case, recording_id, reason=body.reason, request=request))
    session.commit()
    return LinkOut.model_validate(row, from_attributes=True)


@router.get("/{case_id}/shares", response_model=list[ShareOut])
def list_shares(case_id: int, user: Reader, session: SessionDep) -> list[ShareOut]:
    case = run(lambda: service.get_case(session, user, case_id))
    rows = session.scalars(select(CaseShare).where(CaseShare.case_id == case.id).order_by(CaseShare.id))
    return [ShareOut.model_validate(s, from_attributes=True) for s in rows]


@router.post("/{case_id}/shares", response_model=ShareOut, status_code=201)
def add_share(case_id: int, body: ShareIn, request: Request, user: Manager, session: SessionDep) -> ShareOut:
    case = run(lambda: service.get_case(session, user, case_id))
    row = run(
        lambda: service.share(
            session, user, case, user_id=body.user_id, unit_id=body.unit_id, reason=body.reason, request=request
        )
    )
    session.commit()
    return ShareOut.model_validate(row, from_attributes=True)


@router.post("/{case_id}/shares/{share_id}/revoke", response_model=ShareOut)
def revoke_share(case_id: int, share_id: int, request: Request, user: Manager, session: SessionDep) -> ShareOut:
    case = run(lambda: service.get_case(session, user, case_id))
    row = run(lambda: service.unshare(session, user, case, share_id, request=request))
    session.commit()
    return ShareOut.model_validate(row, from_attributes=True)


def package_response(
    request: Request, session: SessionDep, user: User, case_id: int, via: dict[str, Any] | None = None
) -> StreamingResponse:
    """Stream a case's court package; the export is audited before the first byte goes out (``via``: a
    package link it went out under; the export is then ``user``'s, the link's maker)."""
    ctx = context_of(request)
    case = run(lambda: service.get_case(session, user, case_id))
    built = run(lambda: export.build(session, ctx, user, case, request))
    audit(
        session,
        "case.export",
        request=request,
        actor=user,
        object_type="case",
        object_id=case.id,
        details={
            **(via or {}),
            "number": case.number,
            "recordings": built.recordings,
            "bytes": built.size,
            "manifest_blake3": built.manifest_blake3,
            "manifest_sha256": built.manifest_sha256,
            "extraction_list": built.extraction_list,
            "filename": built.filename,
            "checkpoint_size": built.checkpoint_size,
        },
    )
    session.commit()
    headers = {
        "Content-Length": str(built.size),
        "Custodia-Manifest-BLAKE3": built.manifest_blake3,
        "Custodia-Manifest-SHA256": built.manifest_sha256,
        "Content-Disposition": f"attachment; filename=\"case-{case.id}.zip\"; filename*=UTF-8''{quote(built.filename)}",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(built.stream(), media_type="application/zip", headers=headers)


@router.get(
    "/{case_id}/package",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the signed court package"}},
)
def get_package(case_id: int, request: Request, user: Exporter, session: SessionDep) -> StreamingResponse:
    """The case's court package (ZIP): originals, signed manifest, custody events, ledger, README."""
    return package_response(request, session, user, case_id)


# --- search ------------------------------------------------------------------------------------------


def _require_zones(**moments: datetime | None) -> None:
    """422 for a time given without its time zone."""
    for name, value in moments.items():
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, {"code": "naive_time", "message": f"{name} needs a time zone"})


def _found_recording(r: Recording, cases: list[Case]) -> FoundRecording:
    return FoundRecording(
        id=r.id,
        original_name=r.original_name,
        device_serial=r.device_serial,
        officer_no=r.officer_no,
        officer_name=r.officer_name,
        unit_id=r.unit_id,
        started_at=r.name_started_at or r.container_started_at,
        duration_s=r.duration_s,
        codec=r.codec,
        blake3=r.blake3,
        cases=[{"id": c.id, "number": c.number, "name": c.name} for c in cases],
        thumbnail_url=f"/api/v1/recordings/{r.id}/thumbnail",
        page_url=f"/recordings/{r.id}",
        important=r.important,
    )


@search_router.get("", response_model=SearchOut)
def search_recordings(
    request: Request,
    user: Searcher,
    session: SessionDep,
    case_number: str | None = None,
    case_match: Annotated[str, Query(pattern="^(exact|prefix)$")] = "exact",
    case_name: str | None = None,
    officer: str | None = None,
    device_serial: str | None = None,
    unit_id: int | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    enforcement_matter: str | None = None,
    important: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SearchOut:
    """Recordings by case number (exact or prefix), case name, officer, device, unit, time, matter."""
    _require_zones(started_from=started_from, started_to=started_to)
    filters = search.Filters(
        case_number,
        case_match,
        case_name,
        officer,
        device_serial,
        unit_id,
        started_from,
        started_to,
        enforcement_matter,
        important=important,
    )
    found = run(lambda: search.search(session, user, filters, pattern_of(request), limit=limit, offset=offset))
    search.record_search(session, request, filters, found)
    session.commit()
    return SearchOut(
        total=found.total,
        more=found.more,
        case=case_out(found.case) if found.case else None,
        items=[_found_recording(r, found.cases[r.id]) for r in found.recordings],
    )


# --- the transfer's task at the dock -----------------------------------------------------------------


def task_out(session: SessionDep, transfer: Any) -> TaskOut:
    case = session.get(Case, transfer.case_id) if transfer.case_id else None
    return TaskOut(
        transfer_id=transfer.id,
        enforcement_matter=transfer.enforcement_matter,
        case_id=transfer.case_id,
        case_number=case.number if case else None,
        task_recorded_at=transfer.task_recorded_at,
        missing=rules.missing_task(
            rules.TransferTask(transfer.id, transfer.docked_at, transfer.enforcement_matter, transfer.case_id)
        ),
    )


@tasks_router.get("/incomplete", response_model=list[IncompleteOut])
def incomplete_transfers(request: Request, ctx: CtxDep, user: Reader, session: SessionDep) -> list[IncompleteOut]:
    """Transfers still without an enforcement matter or a case after ``transfer_task_grace_hours``."""
    rows = linking.incomplete(session, user, ctx.settings)
    return [
        IncompleteOut(
            transfer_id=t.id,
            device_serial=t.device_serial,
            officer_no=t.officer_no,
            officer_name=t.officer_name,
            docked_at=t.docked_at,
            enforcement_matter=t.enforcement_matter,
            case_id=t.case_id,
            missing=missing,
        )
        for t, missing in rows
    ]


@tasks_router.get("/{transfer_id}/task", response_model=TaskOut)
def get_task(transfer_id: str, user: Reader, session: SessionDep) -> TaskOut:
    transfer = run(lambda: linking.get_transfer(session, user, transfer_id))
    return task_out(session, transfer)


@tasks_router.put("/{transfer_id}/task", response_model=TaskOut)
def put_task(transfer_id: str, body: TaskIn, request: Request, user: TaskSetter, session: SessionDep) -> TaskOut:
    """Name the transfer's enforcement matter and case; its recordings are linked to the case."""
    transfer = run(lambda: linking.get_transfer(session, user, transfer_id))
    run(
        lambda: linking.set_transfer_task(
            session,
            user,
            transfer,
            enforcement_matter=body.enforcement_matter,
            case_number=body.case_number,
            pattern=pattern_of(request),
            request=request,
        )
    )
    session.commit()
    return task_out(session, transfer)


# --- 电子数据提取清单 and 移交回执 (issue 19) ------------------------------------------------------------

DocForm = Annotated[
    str,
    Path(
        pattern="^(pdf|json|tst)$",
        description="pdf: the paper form; json: its signed twin; tst: the RFC 3161 time-stamp of the JSON twin",
    ),
]


def document_response(session: SessionDep, request: Request, user: User, row: IssuedDocument, form: str) -> Response:
    """One form of a kept document; the download is audited with the digest of what went out."""
    if form == "tst" and row.tst is None:
        raise HTTPException(404, {"code": "no_timestamp", "message": "no time-stamping authority stamped it"})
    issue.downloaded(session, row, form, request, user)
    session.commit()
    data, media_type, filename = issue.payload(row, form)
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Custodia-Document": row.uid,
        "Custodia-Document-SHA256": issue.digest_of(row, form),
        "Cache-Control": "no-store",
    }
    return Response(data, media_type=media_type, headers=headers)


def issued_out(row: IssuedDocument, base: str) -> IssuedOut:
    return IssuedOut(
        id=row.uid,
        kind=row.kind,
        issued_at=row.issued_at,
        json_sha256=row.json_sha256,
        pdf_sha256=row.pdf_sha256,
        json_url=f"{base}/{row.uid}.json",
        pdf_url=f"{base}/{row.uid}.pdf",
        tst_url=f"{base}/{row.uid}.tst" if row.tst else None,
        document=row.document,
    )


@tasks_router.get(
    "/{transfer_id}/extraction-list.{form}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "application/json": {}, "application/octet-stream": {}}}},
)
def transfer_extraction_list(
    transfer_id: str, form: DocForm, request: Request, ctx: CtxDep, user: Reader, session: SessionDep
) -> Response:
    """The transfer's 电子数据提取清单 (PDF, or its signed JSON twin); issued on first asking, then kept."""
    row = run(lambda: lists.transfer_list(session, ctx.signer, user, transfer_id, request, ctx.settings))
    return document_response(session, request, user, row, form)


@router.get(
    "/{case_id}/extraction-list.{form}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "application/json": {}, "application/octet-stream": {}}}},
)
def case_extraction_list(
    case_id: int, form: DocForm, request: Request, ctx: CtxDep, user: Exporter, session: SessionDep
) -> Response:
    """The 电子数据提取清单 of the case's court package: the same list the package carries."""
    case = run(lambda: service.get_case(session, user, case_id))
    row = run(lambda: export.case_list(session, ctx, user, case, request))
    return document_response(session, request, user, row, form)


@router.post("/{case_id}/handovers", response_model=IssuedOut, status_code=201)
def add_handover(
    case_id: int, body: HandoverIn, request: Request, ctx: CtxDep, user: Exporter, session: SessionDep
) -> IssuedOut:
    """Record that a package of this case was handed over; returns the signed 移交回执."""
    case = run(lambda: service.get_case(session, user, case_id))
    recipient = handover.Recipient(body.recipient_kind, body.organisation, body.person, body.id_number)
    row = run(
        lambda: handover.hand_over(
            session,
            ctx.signer,
            user,
            case,
            recipient=recipient,
            package_digest=body.package_digest,
            note=body.note,
            request=request,
            settings=ctx.settings,
        )
    )
    session.commit()
    return issued_out(row, f"/api/v1/cases/{case.id}/handovers")


@router.get("/{case_id}/handovers", response_model=list[IssuedOut])
def list_handovers(case_id: int, user: Exporter, session: SessionDep) -> list[IssuedOut]:
    case = run(lambda: service.get_case(session, user, case_id))
    base = f"/api/v1/cases/{case.id}/handovers"
    return [issued_out(r, base) for r in handover.receipts_of(session, case)]


@router.get(
    "/{case_id}/handovers/{receipt_id}.{form}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "application/json": {}, "application/octet-stream": {}}}},
)
def get_handover(
    case_id: int, receipt_id: str, form: DocForm, request: Request, user: Exporter, session: SessionDep
) -> Response:
    case = run(lambda: service.get_case(session, user, case_id))
    row = lists.kept(session, handover.KIND, receipt_id, case_id=case.id)
    if row is None:
        raise HTTPException(404, {"code": "unknown_receipt", "message": "no such receipt for this case"})
    return document_response(session, request, user, row, form)


# --- a package shared by a link that expires (issue 19) -------------------------------------------------


def link_out(link: Any) -> PackageLinkOut:
    return PackageLinkOut.model_validate(link, from_attributes=True)


@router.post("/{case_id}/package-links", response_model=PackageLinkMade, status_code=201)
def add_package_link(
    case_id: int, body: PackageLinkIn, request: Request, user: Exporter, session: SessionDep
) -> PackageLinkMade:
    """A link to the case's court package for someone without an account; its token is shown only here."""
    case = run(lambda: service.get_case(session, user, case_id))
    link, token = run(
        lambda: package_links.make_link(
            session, user, case, recipient=body.recipient, expires_at=body.expires_at, request=request
        )
    )
    session.commit()
    url = f"/api/v1/package-links/{token}/package"
    return PackageLinkMade(**link_out(link).model_dump(), token=token, url=url)


@router.get("/{case_id}/package-links", response_model=list[PackageLinkOut])
def list_package_links(case_id: int, user: Exporter, session: SessionDep) -> list[PackageLinkOut]:
    case = run(lambda: service.get_case(session, user, case_id))
    return [link_out(k) for k in package_links.links_of(session, case)]


@router.post("/{case_id}/package-links/{link_id}/revoke", response_model=PackageLinkOut)
def revoke_package_link(
    case_id: int, link_id: int, request: Request, user: Exporter, session: SessionDep
) -> PackageLinkOut:
    case = run(lambda: service.get_case(session, user, case_id))
    link = run(lambda: package_links.revoke(session, user, case, link_id, request))
    session.commit()
    return link_out(link)


@shared_router.get(
    "/{token}/package",
    response_class=StreamingResponse,
    dependencies=[Depends(public_credentials)],
    responses={200: {"content": {"application/zip": {}}, "description": "the signed court package"}},
)
def shared_package(token: str, request: Request, ctx: CtxDep, session: SessionDep) -> StreamingResponse:
    """The court package a link shares, while the link lives; each download is audited. An unknown, expired
    or revoked link gets 404, the same for each."""
    found = package_links.usable(session, token)
    if found is None:
        tally.record_failure(
            session, "package_link.refused", request=request, details={}, **tally.limits_of(ctx.settings)
        )
        session.commit()
        raise HTTPException(404, {"code": "unknown_link", "message": "no such link, or it expired or was revoked"})
    link, case, maker = found
    # the package first: building it signs a checkpoint of the log, which must not wait on this session's writes
    response = package_response(request, session, maker, case.id, via={"package_link": link.id})
    link.downloads += 1
    audit(
        session,
        "package_link.download",
        request=request,
        object_type="case",
        object_id=case.id,
        details={"link": link.id, "recipient": link.recipient, "download": link.downloads, "maker": maker.username},
    )
    session.commit()
    return response


routers = (router, search_router, tasks_router, shared_router)
