"""Push ingest over HTTP: the Swift subset of the Axis Body Worn integration API, and its administration.

Thin: every rule and write lives in ``service``, ``clips`` and ``tracks``; errors answer as the
specification says (400 never retry, 503 retry soon, 507 out of space).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from evidence_server.accounts.models import Role, Unit, User
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep
from evidence_server.push import clips, rules, service
from evidence_server.push.models import PushAccount
from evidence_server.push.receive import stream_clip
from evidence_server.push.views import track_of
from evidence_server.recordings.deps import get_visible
from evidence_server.security import ROLE_MARK, AnyUser, public_credentials, require_roles
from evidence_server.storage import StorageFullError
from evidence_server.uploads.receiver import UploadBusy

# The Swift subset is specified by the Axis Body Worn integration API and OpenStack Swift, not by this
# server's OpenAPI document (plain-text errors, HEAD twins, Swift headers): kept out of it, tested with
# python-swiftclient (tests/push).
swift = APIRouter(tags=["push"], include_in_schema=False)
admin = APIRouter(prefix="/api/v1/push", tags=["push"])
tracks_api = APIRouter(prefix="/api/v1/recordings", tags=["push"])
routers = (swift, admin, tracks_api)


def require_push_account(request: Request, session: SessionDep, account: str) -> PushAccount:
    """The push account of the ``X-Auth-Token``; the path's account must be its own."""
    ctx = context_of(request)
    found = service.account_for_token(ctx, session, request.headers.get("x-auth-token"))
    if found is None:
        raise HTTPException(401, "missing, wrong or expired X-Auth-Token")
    if account != f"AUTH_{found.username}":
        raise HTTPException(403, "not your account")
    from evidence_server.stations.models import Station

    request.state.station = session.get(Station, found.station_id)  # the audit's actor
    return found


setattr(require_push_account, ROLE_MARK, frozenset({"push"}))
Account = Annotated[PushAccount, Depends(require_push_account)]


def _answer(exc: service.PushError) -> Response:
    return Response(exc.message + "\n", status_code=exc.status, headers=exc.headers, media_type="text/plain")


@swift.get("/auth/v1.0", dependencies=[Depends(public_credentials)])
def auth(
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    x_auth_user: Annotated[str | None, Header()] = None,
    x_auth_key: Annotated[str | None, Header()] = None,
) -> Response:
    try:
        account, token = service.authenticate(ctx, session, x_auth_user, x_auth_key)
    except service.PushError as exc:
        return _answer(exc)
    url = str(request.base_url).rstrip("/") + f"/v1/AUTH_{account.username}"
    return Response(status_code=200, headers={"X-Auth-Token": token, "X-Storage-Url": url, "X-Storage-Token": token})


@swift.api_route("/v1/{account}", methods=["GET", "HEAD"])
def account_info(account: str, who: Account) -> Response:
    return Response(status_code=204, headers={"X-Account-Container-Count": "0"})


@swift.put("/v1/{account}/{container}")
def put_container(account: str, container: str, who: Account, request: Request, session: SessionDep) -> Response:
    meta = rules.meta_from_headers(request.headers.items(), "container")
    try:
        status = service.put_container(session, who, container, meta, request)
    except service.PushError as exc:
        return _answer(exc)
    session.commit()
    return Response(status_code=status)


@swift.post("/v1/{account}/{container}")
def post_container(account: str, container: str, who: Account, request: Request, session: SessionDep) -> Response:
    meta = rules.meta_from_headers(request.headers.items(), "container")
    try:
        service.post_container(session, who, container, meta, request)
    except service.PushError as exc:
        return _answer(exc)
    session.commit()
    return Response(status_code=204)


@swift.api_route("/v1/{account}/{container}", methods=["GET", "HEAD"])
def get_container(account: str, container: str, who: Account, request: Request, session: SessionDep) -> Response:
    if container in rules.SYSTEM_CONTAINERS:
        return Response(status_code=204)
    try:
        row = service.container(session, who, container)
    except service.PushError as exc:
        return _answer(exc)
    headers = {f"X-Container-Meta-{k.title()}": v for k, v in row.meta.items() if k != "status"}
    headers["X-Container-Meta-Status"] = row.status
    listing = service.object_listing(session, row)
    if request.query_params.get("format") == "json":
        return JSONResponse(listing, headers=headers)
    names = "".join(o["name"] + "\n" for o in listing)
    return Response(names, status_code=200, headers=headers, media_type="text/plain")


@swift.api_route("/v1/{account}/{container}/{name:path}", methods=["GET", "HEAD"])
def get_object(account: str, container: str, name: str, who: Account, session: SessionDep) -> Response:
    if container == "System" and name in ("Capability.json", "Capabilities.json"):
        body = rules.capability_body()
        return Response(body, media_type="application/json", headers={"ETag": rules.md5_hex(body)})
    try:
        found = service.stored_object(session, who, container, name)
    except service.PushError as exc:
        return _answer(exc)
    return Response(found.body, media_type="application/octet-stream", headers=found.headers)


@swift.put("/v1/{account}/{container}/{name:path}")
async def put_object(
    account: str,
    container: str,
    name: str,
    who: Account,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    etag: Annotated[str | None, Header()] = None,
    content_length: Annotated[int | None, Header()] = None,
) -> Response:
    meta = rules.meta_from_headers(request.headers.items(), "object")
    try:
        if container in ("Users", "Devices", "System"):
            await _small_body(request)
            fn = {"Users": service.put_user, "Devices": service.put_device}.get(container)
            if fn is not None:
                await anyio.to_thread.run_sync(fn, session, who, name, meta, request)
            await anyio.to_thread.run_sync(session.commit)
            return Response(status_code=201, headers={"ETag": rules.md5_hex(b"")})
        row = await anyio.to_thread.run_sync(service.container, session, who, container)
        if rules.object_kind(name) != "clip":
            body = await _small_body(request)
            got = await anyio.to_thread.run_sync(
                service.put_small_object, session, who, row, name, body, etag, meta, request
            )
            await anyio.to_thread.run_sync(session.commit)
            return Response(status_code=201, headers={"ETag": got})
        return await _put_clip(ctx, session, who, row, name, etag, content_length, meta, request)
    except service.PushError as exc:
        return _answer(exc)


async def _small_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > service.SMALL_OBJECT_BYTES:
            raise service.PushError(413, "object too large for its kind")
    return bytes(body)


async def _put_clip(
    ctx: Any,
    session: Any,
    who: PushAccount,
    row: Any,
    name: str,
    etag: str | None,
    length: int | None,
    meta: dict[str, str],
    request: Request,
) -> Response:
    clips.admit(ctx, row, length)
    begun = await anyio.to_thread.run_sync(clips.begin, session, row, name, etag, meta)
    for old in begun.discard:
        ctx.receiver.discard(old)
    if begun.upload_id is None:
        return Response(status_code=201, headers={"ETag": etag.strip('"') if etag else ""})
    upload_id = begun.upload_id
    try:
        with ctx.receiver.locked(upload_id):
            try:
                digests, md5 = await stream_clip(ctx, upload_id, request, ctx.settings.max_upload_bytes)
            except service.PushError:
                await anyio.to_thread.run_sync(clips.abandon, ctx, session, upload_id)
                raise
            try:
                await anyio.to_thread.run_sync(
                    clips.finish, ctx, session, who, row, name, upload_id, digests, md5, request
                )
            except StorageFullError as exc:
                await anyio.to_thread.run_sync(clips.abandon, ctx, session, upload_id)
                raise service.PushError(507, "evidence storage is full; retry later") from exc
    except UploadBusy as exc:
        raise service.PushError(503, "this object is being received by another request; retry soon") from exc
    return Response(status_code=201, headers={"ETag": md5})


@swift.post("/v1/{account}/{container}/{name:path}")
def post_object(
    account: str, container: str, name: str, who: Account, request: Request, session: SessionDep
) -> Response:
    meta = rules.meta_from_headers(request.headers.items(), "object")
    try:
        if container == "Users":
            service.put_user(session, who, name, meta, request)
        elif container == "Devices":
            service.put_device(session, who, name, meta, request)
        elif container != "System":
            service.post_object(session, who, container, name, meta, request)
    except service.PushError as exc:
        return _answer(exc)
    session.commit()
    return Response(status_code=202)


# --- administration ---------------------------------------------------------------------------


class AccountIn(BaseModel):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    unit_id: int | None = None  # a system administrator names the unit; a device administrator gets their own
    base_url: str | None = None  # the address the recorders' system reaches this server at


@admin.post("/accounts", status_code=201)
def create_account(
    body: AccountIn,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    user: Annotated[User, Depends(require_roles(Role.device_admin, Role.sysadmin))],
) -> dict[str, Any]:
    """A push account for the unit; the answer holds its connection file, the only time its key is shown."""
    unit_id = body.unit_id or user.unit_id
    if (unit_id != user.unit_id and user.role != Role.sysadmin) or session.get(Unit, unit_id) is None:
        raise HTTPException(404, "no such unit")
    new = service.create_account(session, unit_id=unit_id, name=body.name, by=user, request=request)
    session.commit()
    base = body.base_url or str(request.base_url)
    conn = service.connection_file_for(session, new, base)
    return {"account_id": new.account.id, "username": new.account.username, "connection_file": conn}


@admin.get("/refusals")
def list_refusals(
    session: SessionDep,
    user: Annotated[User, Depends(require_roles(Role.device_admin, Role.sysadmin, Role.auditor))],
) -> list[dict[str, Any]]:
    """What push accounts sent that could not be taken (unknown users and devices, wrong ETags)."""
    return service.refusals(session, None if user.sees_all_units else user.unit_id)


@tracks_api.get("/{recording_id}/track")
def recording_track(
    recording_id: int, request: Request, session: SessionDep, user: AnyUser, format: str = "json"
) -> Response:
    """The recording's GNSS track (positions are personal data: the recording's access rights, each view audited)."""
    rec = get_visible(session, user, recording_id)
    track = track_of(session, rec.id)
    if track is None:
        raise HTTPException(404, "this recording has no track")
    audit(
        session,
        "recording.track_viewed",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={"track_id": track["id"], "points": len(track["points"]), "format": format},
    )
    session.commit()
    if format == "svg":
        from evidence_server.push.tracks import svg

        return Response(svg(track["points"]), media_type="image/svg+xml")
    return JSONResponse(track)
