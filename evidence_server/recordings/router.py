from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from evidence_server.accounts.models import User
from evidence_server.audit.service import record as audit
from evidence_server.cases.access import recordings_visible
from evidence_server.cases.search import ordering
from evidence_server.context import CtxDep
from evidence_server.custody import reads
from evidence_server.custody.serving import ContentRefused, ensure_servable, open_content
from evidence_server.db import SessionDep, total_of_page
from evidence_server.recordings.deps import get_visible, get_visible_row
from evidence_server.recordings.important import MARKERS, MAX_REASON
from evidence_server.recordings.models import Recording
from evidence_server.recordings.service import (
    RangeError,
    byte_span,
    content_headers,
    media_type,
)
from evidence_server.retention.disposal import gone
from evidence_server.retention.models import DISPOSED
from evidence_server.retention.service import change_mark
from evidence_server.security import AnyUser, require_roles

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])


class RecordingOut(BaseModel):
    id: int
    blake3: str
    sha256: str
    sm3: str | None  # None until the SM3 backfill has read a recording stored before SM3 was computed
    size: int
    device_serial: str
    officer_no: str | None
    officer_name: str | None
    station_id: int
    unit_id: int
    transfer_id: str
    original_path: str
    original_name: str
    device_mtime: datetime | None
    name_started_at: datetime | None
    name_ended_at: datetime | None
    container_started_at: datetime | None
    container_ended_at: datetime | None
    probe_state: str
    duration_s: float | None
    codec: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    container_format: str | None
    container_created_at: datetime | None
    encoder: str | None
    fixity_state: str
    fixity_checked_at: datetime | None
    docked_at: datetime
    copied_at: datetime | None
    uploaded_at: datetime
    verified_at: datetime
    # the important mark (重要文件标记): source "device" (how: file_name|folder|mp4_tag|device_list) or "person"
    important: bool
    important_source: str | None
    important_how: str | None
    important_by_id: int | None
    important_at: datetime | None
    important_reviewed_at: datetime | None


class ImportantIn(BaseModel):
    """Set, clear or review a recording's important mark; clearing a mark the recorder set needs a reason."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["set", "clear", "review"]
    reason: str | None = Field(default=None, max_length=MAX_REASON)


Marker = Annotated[User, Depends(require_roles(*MARKERS))]


class RecordingPage(BaseModel):
    total: int
    more: bool = False  # true: there are more than ``total`` (a list counts no further than 10,000 past its page)
    items: list[RecordingOut]


# The two routes below answer with JSON they made from the already validated model, the bytes FastAPI
# would make (its response_model fast path: the TypeAdapter's dump_json), without FastAPI validating
# the answer a second time in one more thread-pool hop. response_model still documents them.
_PAGE_JSON = TypeAdapter(RecordingPage).dump_json
_RECORDING_JSON = TypeAdapter(RecordingOut).dump_json
_OUT_NAMES = tuple(RecordingOut.model_fields)
_OUT_COLUMNS = tuple(getattr(Recording, name) for name in _OUT_NAMES)


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@router.get("", response_model=RecordingPage)
def list_recordings(
    user: AnyUser,
    session: SessionDep,
    device_serial: str | None = None,
    officer_no: str | None = None,
    transfer_id: str | None = None,
    important: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    q = recordings_visible(user)
    if device_serial:
        q = q.where(Recording.device_serial == device_serial)
    if officer_no:
        q = q.where(Recording.officer_no == officer_no)
    if transfer_id:
        q = q.where(Recording.transfer_id == transfer_id)
    if important is not None:
        q = q.where(Recording.important.is_(important))
    # only RecordingOut's columns, as plain rows: not the ffprobe JSON (kilobytes a row), no ORM objects
    page_q = q.with_only_columns(*_OUT_COLUMNS).order_by(*ordering(None)).limit(limit).offset(offset)
    rows = session.execute(page_q).all()
    total, more = total_of_page(session, q, offset, limit, len(rows))
    items = [RecordingOut.model_validate(dict(zip(_OUT_NAMES, r, strict=True))) for r in rows]
    page = RecordingPage(total=total, more=more, items=items)
    session.close()  # the connection back to the pool here, not in another thread-pool hop after the response
    return _json(_PAGE_JSON(page, by_alias=True))


@router.get("/{recording_id}", response_model=RecordingOut)
def get_recording(recording_id: int, request: Request, user: AnyUser, session: SessionDep) -> Response:
    row = get_visible_row(session, user, recording_id, _OUT_COLUMNS)
    audit(session, "recording.view", request=request, object_type="recording", object_id=row.id)
    session.commit()
    return _json(_RECORDING_JSON(RecordingOut.model_validate(dict(zip(_OUT_NAMES, row, strict=True))), by_alias=True))


@router.post("/{recording_id}/important", response_model=RecordingOut)
def mark_important(
    recording_id: int, body: ImportantIn, request: Request, ctx: CtxDep, user: Marker, session: SessionDep
) -> Response:
    """Set, clear or review the important mark (officers: their own recordings; case handlers: their unit's)."""
    rec = get_visible(session, user, recording_id)
    refused = change_mark(session, ctx, user, rec, body.action, body.reason, request)
    if refused is not None:
        raise HTTPException(refused.status, {"code": refused.code, "message": refused.message}) from refused
    session.commit()
    return _json(_RECORDING_JSON(RecordingOut.model_validate(rec, from_attributes=True), by_alias=True))


@router.get(
    "/{recording_id}/content",
    response_class=StreamingResponse,
    responses={206: {"description": "partial content"}, 416: {"description": "bad range"}},
)
def content(
    recording_id: int,
    request: Request,
    ctx: CtxDep,
    user: AnyUser,
    session: SessionDep,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> StreamingResponse:
    """The original bytes, whole or one HTTP Range of them; every read is audited.

    Every block is checked against the recording's block map before it is sent (evidence_server/custody):
    a damaged copy is refused (409) and marked damaged, never served.
    """
    rec = get_visible(session, user, recording_id)
    if rec.fixity_state == DISPOSED:
        raise gone(session, request, rec)  # 410 with the disposal certificate
    try:
        ensure_servable(session, request, rec)
    except ContentRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    try:
        span = byte_span(range_, rec.size)
    except RangeError as exc:
        raise HTTPException(416, str(exc), headers={"Content-Range": f"bytes */{rec.size}"}) from exc
    try:
        body = open_content(session, ctx, request, rec, span, range_)
    except ContentRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    return StreamingResponse(
        reads.prefetched(body),
        status_code=206 if span.partial else 200,
        headers=content_headers(rec, span),
        media_type=media_type(rec),
    )
