"""/api/v1/audit: entries, signed checkpoints (JSON and signed-note text), inclusion and consistency proofs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from custodia_wire.auditlog import LogError
from evidence_server.accounts.models import Role, User
from evidence_server.audit import log as auditlog
from evidence_server.audit import tiles, viewer
from evidence_server.audit.models import AuditCheckpoint, AuditEvent
from evidence_server.audit.service import entry_dict
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.security import require_roles

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Reader = Annotated[User, Depends(require_roles(Role.auditor, Role.legal_affairs, Role.sysadmin))]
Signer = Annotated[User, Depends(require_roles(Role.auditor, Role.sysadmin))]


def _entry_out(ev: AuditEvent) -> dict[str, Any]:
    return {**entry_dict(ev), "id": ev.id, "leaf_hash": ev.leaf_hash}


def _checkpoint(session: SessionDep, size: int | None) -> AuditCheckpoint:
    cp = auditlog.latest_checkpoint(session) if size is None else auditlog.checkpoint_at(session, size)
    if cp is None:
        raise HTTPException(
            404,
            "no checkpoint yet; issue one with POST /api/v1/audit/checkpoints"
            if size is None
            else f"no checkpoint at tree size {size}",
        )
    return cp


@router.get("/entries")
def list_entries(
    user: Reader,
    session: SessionDep,
    after_seq: int = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor_name: str | None = None,
) -> dict[str, Any]:
    """Entries in log order, after ``after_seq`` (page with the last ``seq`` you got)."""
    q = select(AuditEvent).where(AuditEvent.seq > after_seq)
    for column, value in (
        (AuditEvent.action, action),
        (AuditEvent.object_type, object_type),
        (AuditEvent.object_id, object_id),
        (AuditEvent.actor_name, actor_name),
    ):
        if value is not None:
            q = q.where(column == value)
    rows = session.scalars(q.order_by(AuditEvent.seq).limit(limit)).all()
    return {"log_size": auditlog.log_size(session), "items": [_entry_out(ev) for ev in rows]}


@router.get("/entries/{seq}")
def get_entry(seq: int, user: Reader, session: SessionDep) -> dict[str, Any]:
    ev = session.scalar(select(AuditEvent).where(AuditEvent.seq == seq))
    if ev is None:
        raise HTTPException(404, f"no audit entry {seq}")
    return _entry_out(ev)


@router.get("/checkpoints")
def list_checkpoints(
    user: Reader, session: SessionDep, request: Request, ctx: CtxDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(limit))
    return [auditlog.checkpoint_out(cp, ctx.public_key_b64) for cp in rows]


@router.post(
    "/checkpoints",
    responses={
        200: {"description": "nothing appended since the latest checkpoint"},
        201: {"description": "a new checkpoint was signed"},
    },
)
def create_checkpoint(user: Signer, session: SessionDep, request: Request, ctx: CtxDep) -> JSONResponse:
    """Sign (and time-stamp, when a TSA is configured) the log as it is now."""
    try:
        cp, created = auditlog.issue_checkpoint(ctx, session)
    except (auditlog.LogTampered, LogError) as exc:
        raise HTTPException(409, str(exc)) from exc
    return JSONResponse(auditlog.checkpoint_out(cp, ctx.public_key_b64), status_code=201 if created else 200)


@router.get("/checkpoints/latest")
def latest(user: Reader, session: SessionDep, request: Request, ctx: CtxDep) -> dict[str, Any]:
    return auditlog.checkpoint_out(_checkpoint(session, None), ctx.public_key_b64)


@router.get("/checkpoints/latest/note", response_class=PlainTextResponse)
def latest_note(user: Reader, session: SessionDep) -> PlainTextResponse:
    """The latest checkpoint as a signed note, to print and file."""
    return PlainTextResponse(_checkpoint(session, None).note)


@router.get("/checkpoints/{tree_size}")
def by_size(tree_size: int, user: Reader, session: SessionDep, request: Request, ctx: CtxDep) -> dict[str, Any]:
    return auditlog.checkpoint_out(_checkpoint(session, tree_size), ctx.public_key_b64)


@router.get("/checkpoints/{tree_size}/note", response_class=PlainTextResponse)
def note_by_size(tree_size: int, user: Reader, session: SessionDep) -> PlainTextResponse:
    return PlainTextResponse(_checkpoint(session, tree_size).note)


@router.get(
    "/checkpoints/{tree_size}/timestamp",
    response_class=Response,
    responses={200: {"content": {"application/timestamp-reply": {}}}},
)
def timestamp_token(tree_size: int, user: Reader, session: SessionDep) -> Response:
    """The RFC 3161 TimeStampToken (DER) over the signed note, for ``openssl ts -verify``."""
    cp = _checkpoint(session, tree_size)
    if cp.tsa_token is None:
        raise HTTPException(404, f"checkpoint {tree_size} was not time-stamped")
    return Response(
        cp.tsa_token,
        media_type="application/timestamp-reply",
        headers={"Content-Disposition": f'attachment; filename="checkpoint-{tree_size}.tst"'},
    )


@router.get(
    "/tile/8/{tile_path:path}", response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}}
)
def tile(tile_path: str, user: Reader, session: SessionDep) -> Response:
    """A tile of the latest checkpoint's tree in the C2SP tlog-tiles layout (``tile/8/<L>/<N>[.p/<W>]``), so
    that tile-reading verifiers (Go's sumdb/tlog, Tessera's clients) compute and check proofs themselves."""
    try:
        level, index, width = tiles.parse_tile_path(tile_path)
        cp = _checkpoint(session, None)
        data = tiles.TreeReader(session, cp.tree_size).tile(level, index, width)
    except (ValueError, LogError) as exc:
        raise HTTPException(404, str(exc)) from exc
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


@router.get("/proofs/inclusion")
def inclusion(
    user: Reader, session: SessionDep, seq: Annotated[int, Query(ge=0)], tree_size: int | None = None
) -> dict[str, Any]:
    """Proof that entry ``seq`` is in the checkpointed log (default: the latest checkpoint)."""
    cp = _checkpoint(session, tree_size)
    try:
        return auditlog.inclusion_document(session, seq, cp)
    except LogError as exc:
        raise HTTPException(404 if seq >= cp.tree_size else 409, str(exc)) from exc


@router.get("/proofs/consistency")
def consistency(
    user: Reader, session: SessionDep, first: Annotated[int, Query(ge=0)], second: int | None = None
) -> dict[str, Any]:
    """Proof that checkpoint ``first`` is a prefix of checkpoint ``second`` (default: the latest)."""
    old, new = _checkpoint(session, first), _checkpoint(session, second)
    if old.tree_size > new.tree_size:
        raise HTTPException(422, "first must not be larger than second")
    try:
        return auditlog.consistency_document(session, old, new)
    except LogError as exc:
        raise HTTPException(409, str(exc)) from exc


class ExcerptIn(BaseModel):
    seqs: list[int] = Field(min_length=1, max_length=10_000)
    purpose: str | None = Field(default=None, max_length=500)


@router.post("/excerpts", responses={422: {"description": "an entry is not in the log"}})
def excerpt(body: ExcerptIn, user: Signer, session: SessionDep, ctx: CtxDep) -> dict[str, Any]:
    """Chosen entries with their inclusion proofs under the latest checkpoint, signed as a whole
    (``custodia.audit-excerpt/1``; check it with ``custodia verify --excerpt FILE --key KEY``). Audited."""
    try:
        doc = viewer.export_excerpt(ctx, session, user, body.seqs, body.purpose)
    except LogError as exc:
        session.rollback()
        raise HTTPException(422, str(exc)) from exc
    session.commit()
    return doc
