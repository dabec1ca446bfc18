"""Playing and looking at footage: thumbnails, H.264 proxies (with HTTP Range), the officer's day,
and a recording's cases. Each view and playback is audited; a derived file is always marked so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.cases import search, service
from evidence_server.cases.schemas import CaseOut, DerivedOut, TimelineItemOut, TimelineOut
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.media.derive import derived_of
from evidence_server.media.models import DerivedMedia
from evidence_server.recordings.deps import get_visible
from evidence_server.recordings.models import FIXITY_BAD, Recording
from evidence_server.recordings.service import RangeError, parse_range
from evidence_server.security import AnyUser

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])


def _derived(session: Session, rec: Recording, kind: str) -> DerivedMedia:
    row = derived_of(session, rec.id).get(kind)
    if row is None:
        raise HTTPException(
            404,
            {
                "code": "not_made_yet",
                "message": f"the {kind} of recording {rec.id} is not made "
                "yet; it is made in the background after ingest",
            },
        )
    if row.state == "not_needed":
        raise HTTPException(
            404, {"code": "not_needed", "message": f"recording {rec.id} needs no {kind}: play the original"}
        )
    if row.state != "done" or row.storage_key is None or row.size is None:
        raise HTTPException(
            404,
            {
                "code": f"{kind}_failed",
                "message": f"the {kind} of recording {rec.id} could not be made: {row.error or row.state}",
            },
        )
    return row


def derived_headers(row: DerivedMedia) -> dict[str, str]:
    """A derived file says what it is and what it was made from, so nobody mistakes it for evidence."""
    return {
        "Custodia-Derived": row.kind,
        "Custodia-Derived-From": row.source_blake3,
        "Custodia-BLAKE3": row.blake3 or "",
        "ETag": f'"{row.blake3}"',
        "Cache-Control": "no-store",
    }


@router.get("/{recording_id}/thumbnail", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def thumbnail(recording_id: int, request: Request, ctx: CtxDep, user: AnyUser, session: SessionDep) -> Response:
    rec = get_visible(session, user, recording_id)
    row = _derived(session, rec, "thumbnail")
    audit(session, "recording.thumbnail_view", request=request, object_type="recording", object_id=rec.id)
    session.commit()
    assert row.storage_key is not None
    data = b"".join(ctx.store.iter_range(row.storage_key))
    return Response(data, media_type=row.media_type or "image/jpeg", headers=derived_headers(row))


@router.get(
    "/{recording_id}/proxy",
    response_class=StreamingResponse,
    responses={206: {"description": "partial content"}, 416: {"description": "bad range"}},
)
def proxy(
    recording_id: int,
    request: Request,
    ctx: CtxDep,
    user: AnyUser,
    session: SessionDep,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> StreamingResponse:
    """The H.264 proxy of a recording a browser cannot play as it is: derived, never evidence."""
    rec = get_visible(session, user, recording_id)
    if rec.fixity_state in FIXITY_BAD:
        raise HTTPException(409, f"recording {rec.id} failed its fixity check ({rec.fixity_state})")
    row = _derived(session, rec, "proxy")
    assert row.storage_key is not None and row.size is not None
    size, start, end, status = row.size, 0, row.size - 1, 200
    if range_:
        try:
            start, end = parse_range(range_, size)
        except RangeError as exc:
            raise HTTPException(416, str(exc), headers={"Content-Range": f"bytes */{size}"}) from exc
        status = 206
    audit(
        session,
        "recording.playback" if range_ else "recording.download",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={"derived": "proxy", "proxy_blake3": row.blake3, **({"range": range_} if range_ else {})},
    )
    session.commit()
    headers = {
        **derived_headers(row),
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Content-Disposition": f'inline; filename="recording-{rec.id}-proxy.mp4"',
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    body: Iterator[bytes] = ctx.store.iter_range(row.storage_key, start, end)
    return StreamingResponse(body, status_code=status, headers=headers, media_type="video/mp4")


@router.get("/{recording_id}/derivatives", response_model=list[DerivedOut])
def derivatives(recording_id: int, user: AnyUser, session: SessionDep) -> list[DerivedOut]:
    """What was derived from a recording (thumbnail, proxy), each with its own fingerprint."""
    rec = get_visible(session, user, recording_id)
    return [
        DerivedOut(
            kind=d.kind,
            state=d.state,
            blake3=d.blake3,
            sha256=d.sha256,
            size=d.size,
            media_type=d.media_type,
            source_blake3=d.source_blake3,
            made_at=d.made_at,
            url=f"/api/v1/recordings/{rec.id}/{d.kind}" if d.state == "done" else None,
        )
        for d in derived_of(session, rec.id).values()
    ]


@router.get("/{recording_id}/timeline", response_model=TimelineOut)
def timeline(recording_id: int, request: Request, ctx: CtxDep, user: AnyUser, session: SessionDep) -> TimelineOut:
    """The officer's day around a recording: checkout, recordings and gaps, dock, upload."""
    rec = get_visible(session, user, recording_id)
    day = search.officer_day(session, user, rec, ctx.settings)
    audit(session, "recording.timeline_view", request=request, object_type="recording", object_id=rec.id)
    session.commit()
    return TimelineOut(
        recording_id=rec.id,
        officer_no=day.officer_no,
        day_start=day.start,
        day_end=day.end,
        items=[
            TimelineItemOut(
                kind=i.kind,
                start=i.start,
                end=i.end,
                seconds=i.seconds,
                ref=i.ref if i.kind != "recording" or i.ref in day.visible else None,
                detail=i.detail,
            )
            for i in day.items
        ],
    )


@router.get("/{recording_id}/cases", response_model=list[CaseOut])
def recording_cases(recording_id: int, user: AnyUser, session: SessionDep) -> list[CaseOut]:
    rec = get_visible(session, user, recording_id)
    return [CaseOut.model_validate(c, from_attributes=True) for c in service.cases_of_recording(session, user, rec.id)]
