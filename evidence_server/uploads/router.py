"""tus 1.0 (core, creation, termination) under /api/v1/uploads, verifying each recording on receipt."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from custodia_wire import TUS_VERSION, directio
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep, ServerContext
from evidence_server.db import SessionDep
from evidence_server.security import CurrentStation, public
from evidence_server.storage import StorageFullError
from evidence_server.uploads import finalize, service
from evidence_server.uploads.models import Upload
from evidence_server.uploads.receiver import OffsetMismatch, StagingFull, UploadBusy

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads (tus 1.0)"])

TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
_PRECONDITION: dict[int | str, dict[str, Any]] = {412: {"description": "Tus-Resumable: 1.0.0 missing"}}
#: The tus answers beyond the usual errors (see docs/station-api.md), for /openapi.json.
TUS_ANSWERS: dict[str, dict[int | str, dict[str, Any]]] = {
    "create": {
        **_PRECONDITION,
        413: {"description": "Upload-Length above Tus-Max-Size"},
        429: {"description": "too many new or unfinished uploads for this station"},
    },
    "head": {
        200: {"description": "Upload-Offset and Upload-Length"},
        410: {"description": "upload void (or its staged bytes lost: start a new upload)"},
    },
    "patch": {
        **_PRECONDITION,
        204: {"description": "bytes taken; Upload-Offset is the new offset"},
        410: {"description": "upload void"},
        413: {"description": "more bytes than Upload-Length"},
        415: {"description": "Content-Type is not application/offset+octet-stream"},
        409: {"description": "Upload-Offset is not the server's; without Upload-Offset: bytes lost, start anew"},
        423: {"description": "another request is writing to or verifying this upload"},
        460: {"description": "fingerprint mismatch: the upload is void, an incident recorded"},
        507: {"description": "staging or evidence storage full; retry later"},
    },
    "terminate": {423: {"description": "another request is writing to this upload"}},
}
WRITE_BLOCK = 4 * 1024 * 1024


def _tus_version(tus_resumable: str | None) -> None:
    if tus_resumable != TUS_VERSION:
        raise HTTPException(412, "Tus-Resumable: 1.0.0 required", headers={"Tus-Version": TUS_VERSION})


@router.options("", status_code=204, dependencies=[Depends(public)])
def tus_options(request: Request, ctx: CtxDep) -> Response:
    return Response(
        status_code=204,
        headers={
            **TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination",
            "Tus-Max-Size": str(ctx.settings.max_upload_bytes),
        },
    )


@router.post("", status_code=201, responses=TUS_ANSWERS["create"])
def create(
    request: Request,
    ctx: CtxDep,
    station: CurrentStation,
    session: SessionDep,
    upload_length: Annotated[int | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    """Create an upload for one recording; its metadata declares the path and both fingerprints."""
    _tus_version(tus_resumable)
    if upload_length is None:
        raise HTTPException(400, "Upload-Length required (deferred length is not supported)")
    wait = ctx.limits.upload_creates.take(station.id)
    if wait is not None:
        raise HTTPException(
            429, "too many new uploads from this station; slow down", headers={**TUS_HEADERS, "Retry-After": str(wait)}
        )
    if service.open_uploads(session, station.id) >= ctx.settings.max_open_uploads:
        raise HTTPException(
            429,
            "this station has too many unfinished uploads; finish or terminate some",
            headers={**TUS_HEADERS, "Retry-After": "60"},
        )
    try:
        meta = service.parse_metadata(upload_metadata)
        upload = service.create_upload(session, station, upload_length, meta, ctx.settings.max_upload_bytes)
    except service.UploadTooLarge as exc:
        raise HTTPException(
            413, str(exc), headers={**TUS_HEADERS, "Tus-Max-Size": str(ctx.settings.max_upload_bytes)}
        ) from exc
    except service.BadUpload as exc:
        raise HTTPException(400, str(exc)) from exc
    audit(
        session,
        "upload.create",
        request=request,
        object_type="upload",
        object_id=upload.id,
        details={"path": upload.path, "length": upload.length, "transfer_id": upload.transfer_id},
    )
    session.commit()
    # The staging file only once the row is committed: a crash in between leaves a row without bytes
    # (its PATCH answers 409 and the station starts afresh; the fresh upload's verification supersedes
    # it), never a staging file that no upload owns.
    ctx.receiver.create(upload.id)
    return Response(status_code=201, headers={**TUS_HEADERS, "Location": f"/api/v1/uploads/{upload.id}"})


def _own_upload(session: SessionDep, station_id: int, upload_id: str) -> Upload:
    upload = session.get(Upload, upload_id)
    if upload is None or upload.station_id != station_id:
        raise HTTPException(404, "no such upload", headers=TUS_HEADERS)
    return upload


def _done_headers(upload: Upload) -> dict[str, str]:
    return {
        **TUS_HEADERS,
        "Upload-Offset": str(upload.length),
        "Upload-Length": str(upload.length),
        "Custodia-Recording-Id": str(upload.recording_id),
        "Custodia-Verified": "true",
        "Cache-Control": "no-store",
    }


@router.head("/{upload_id}", responses=TUS_ANSWERS["head"])
def head(upload_id: str, request: Request, ctx: CtxDep, station: CurrentStation, session: SessionDep) -> Response:
    upload = _own_upload(session, station.id, upload_id)
    if upload.state == "receiving" and not ctx.receiver.path(upload.id).exists():
        try:
            with ctx.receiver.locked(upload.id):
                _current(session, upload)
                if upload.state == "receiving" and not ctx.receiver.path(upload.id).exists():
                    finalize.mark_lost(session, upload, request)  # the station starts a new upload
                    ctx.receiver.unlock_file(upload.id)
        except UploadBusy:
            # a request holds the lock with the staging file gone: it is recording the verified bytes
            return Response(status_code=200, headers={**_offset_headers(upload, upload.length)})
    if upload.state == "verified":
        return Response(status_code=200, headers=_done_headers(upload))
    if upload.state != "receiving":  # rejected, terminated, superseded, expired or lost
        return Response(status_code=410, headers=TUS_HEADERS)
    try:
        offset = ctx.receiver.offset(upload.id)
    except FileNotFoundError:
        return Response(status_code=410, headers=TUS_HEADERS)
    return Response(status_code=200, headers=_offset_headers(upload, offset))


def _offset_headers(upload: Upload, offset: int) -> dict[str, str]:
    return {
        **TUS_HEADERS,
        "Upload-Offset": str(offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }


def _current(session: SessionDep, upload: Upload) -> None:
    """Read the upload's state afresh (after taking its lock: the previous holder may have changed it),
    then give the connection back: the body that follows streams for seconds, and holding a pooled
    connection (an open transaction) through it would let a crowd of docks empty the pool."""
    session.commit()  # ends the read transaction, whose snapshot may predate the other request's commit
    session.refresh(upload)
    session.commit()  # the connection back to the pool; the loaded state stays (expire_on_commit=False)


@router.patch("/{upload_id}", status_code=204, responses=TUS_ANSWERS["patch"])
async def patch(
    upload_id: str,
    request: Request,
    ctx: CtxDep,
    station: CurrentStation,
    session: SessionDep,
    upload_offset: Annotated[int, Header()],
    content_type: Annotated[str | None, Header()] = None,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    """Append bytes at ``Upload-Offset``; the last byte triggers verification of both digests.

    A PATCH with an empty body at the full length finalizes an upload whose bytes all arrived
    before a server restart (they are hashed again from the staging file). One request at a time
    works on an upload: a parallel one gets 423 and asks again.
    """
    _tus_version(tus_resumable)
    if content_type != "application/offset+octet-stream":
        raise HTTPException(415, "Content-Type must be application/offset+octet-stream")
    upload = _own_upload(session, station.id, upload_id)
    if upload.state == "verified":
        return Response(status_code=204, headers=_done_headers(upload))
    if upload.state != "receiving":
        return Response(status_code=410, headers=TUS_HEADERS)
    try:
        with ctx.receiver.locked(upload.id):
            return await _patch_locked(ctx, session, upload, upload_offset, request)
    except UploadBusy as exc:
        raise HTTPException(423, "another request is writing to this upload", headers=TUS_HEADERS) from exc


async def _patch_locked(
    ctx: ServerContext, session: SessionDep, upload: Upload, upload_offset: int, request: Request
) -> Response:
    await anyio.to_thread.run_sync(_current, session, upload)
    if upload.state != "receiving":
        # finished by the request that held the lock before: it removed the lock file, which this
        # request's open made again; remove it too (this request holds it), or it stays for good
        ctx.receiver.unlock_file(upload.id)
        if upload.state == "verified":
            return Response(status_code=204, headers=_done_headers(upload))
        return Response(status_code=410, headers=TUS_HEADERS)
    if not ctx.receiver.path(upload.id).exists():
        # never made (a crash right after the row's commit) or lost: only bytes received by this upload
        # count, so it cannot complete; the station starts a new upload
        await anyio.to_thread.run_sync(finalize.mark_lost, session, upload, request)
        ctx.receiver.unlock_file(upload.id)
        raise HTTPException(409, "staged bytes lost; start a new upload", headers=TUS_HEADERS)
    offset = await _receive(ctx, upload, upload_offset, request)
    if offset < upload.length:
        return Response(status_code=204, headers={**TUS_HEADERS, "Upload-Offset": str(offset)})
    try:
        outcome = await anyio.to_thread.run_sync(finalize.finalize, ctx, session, upload, request)
    except StorageFullError as exc:
        raise HTTPException(507, "evidence storage is full; retry later", headers=TUS_HEADERS) from exc
    if isinstance(outcome, finalize.Rejected):
        return JSONResponse(
            status_code=460,
            headers=TUS_HEADERS,
            content={
                "detail": "fingerprint mismatch: the bytes received are not the bytes declared",
                "incident_id": outcome.incident_id,
            },
        )
    return Response(status_code=204, headers=_done_headers(upload))


async def _receive(ctx: ServerContext, upload: Upload, offset: int, request: Request) -> int:
    try:
        appender = ctx.receiver.open_for_append(upload.id, offset)
    except OffsetMismatch as exc:
        raise HTTPException(
            409,
            f"Upload-Offset mismatch: server has {exc.expected}",
            headers={**TUS_HEADERS, "Upload-Offset": str(exc.expected)},
        ) from exc
    except UploadBusy as exc:
        raise HTTPException(423, "another request is writing to this upload", headers=TUS_HEADERS) from exc
    # Receiving the next block overlaps hashing and writing the previous one (on a worker thread).
    # Bytes are gathered straight into two page-aligned buffers, so each is copied once in user
    # space and written to staging with O_DIRECT.
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    bufs = [directio.borrow(WRITE_BLOCK) for _ in range(2)]
    cur, fill = 0, 0
    received = offset
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > upload.length:
                raise HTTPException(413, "more bytes than Upload-Length", headers=TUS_HEADERS)
            view = memoryview(chunk)
            while view:
                take = min(len(view), WRITE_BLOCK - fill)
                bufs[cur][fill : fill + take] = view[:take]
                fill += take
                view = view[take:]
                if fill == WRITE_BLOCK:
                    if pending is not None:
                        await pending  # the other buffer is free again
                    pending = loop.run_in_executor(None, appender.write, memoryview(bufs[cur]), True)
                    cur, fill = cur ^ 1, 0
        if pending is not None:
            await pending
            pending = None
        if fill:
            await anyio.to_thread.run_sync(appender.write, memoryview(bufs[cur])[:fill], True)
    except ClientDisconnect:
        pass  # keep what arrived: the client resumes from HEAD
    except StagingFull as exc:
        raise HTTPException(507, "server staging area is full; retry later", headers=TUS_HEADERS) from exc
    finally:
        if pending is not None:
            await asyncio.wait([pending])
        await anyio.to_thread.run_sync(appender.close)
        for buf in bufs:
            directio.give_back(buf)
    return appender.hasher.size


@router.delete("/{upload_id}", status_code=204, responses=TUS_ANSWERS["terminate"])
def terminate(upload_id: str, request: Request, ctx: CtxDep, station: CurrentStation, session: SessionDep) -> Response:
    upload = _own_upload(session, station.id, upload_id)
    if upload.state == "receiving":
        try:
            with ctx.receiver.locked(upload.id):
                _current(session, upload)
                if upload.state == "receiving":
                    upload.state = "terminated"
                    audit(session, "upload.terminated", request=request, object_type="upload", object_id=upload.id)
                    session.commit()
                    ctx.receiver.discard(upload.id)
        except UploadBusy as exc:
            raise HTTPException(423, "another request is writing to this upload", headers=TUS_HEADERS) from exc
    return Response(status_code=204, headers=TUS_HEADERS)
