"""Push accounts and what they send: users, devices, recording containers, small objects, refusals."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import documents
from evidence_server.accounts.models import User
from evidence_server.accounts.secrets import token_hash
from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.ledger.models import Device
from evidence_server.push import rules, tracks
from evidence_server.push.models import (
    PushAccount,
    PushContainer,
    PushDevice,
    PushObject,
    PushRefusal,
    PushUser,
    Track,
)
from evidence_server.stations.models import Station
from evidence_server.transfers import service as transfers
from evidence_server.transfers.models import docked_evidence

#: Bookmarks, tracks, key files and user or device objects are small; a larger one is refused.
SMALL_OBJECT_BYTES = 4 * 1024**2


class PushError(Exception):
    """An answer other than success, with the status the specification gives it."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class NewAccount:
    account: PushAccount
    key: str


def create_account(
    session: Session, *, unit_id: int, name: str, by: User | None, request: Request | None
) -> NewAccount:
    """A push account for one body-worn system of a unit; its key is shown once (in the connection file)."""
    username = f"{name}-{secrets.token_hex(3)}"
    station = Station(name=f"push:{username}", unit_id=unit_id)
    session.add(station)
    session.flush()
    key = secrets.token_urlsafe(32)
    account = PushAccount(
        username=username,
        key_hash=token_hash(key),
        unit_id=unit_id,
        station_id=station.id,
        created_by_id=by.id if by else None,
    )
    session.add(account)
    session.flush()
    audit(
        session,
        "push.account_created",
        request=request,
        actor=by,
        object_type="push_account",
        object_id=account.id,
        details={"username": username, "unit_id": unit_id, "station_id": station.id},
    )
    return NewAccount(account, key)


def token_key(ctx: ServerContext) -> bytes:
    """The key tokens are signed with: derived from the server's signing key, so every process agrees."""
    from cryptography.hazmat.primitives import serialization

    raw = ctx.signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(b"custodia-push-token/1" + raw).digest()


def authenticate(ctx: ServerContext, session: Session, user: str | None, key: str | None) -> tuple[PushAccount, str]:
    if not user or not key:
        raise PushError(400, "X-Auth-User and X-Auth-Key are required")
    account = session.scalar(select(PushAccount).where(PushAccount.username == user))
    if account is None or account.revoked_at is not None or not key or account.key_hash != token_hash(key):
        raise PushError(401, "unknown account or wrong key")
    expires = int(time.time() + ctx.settings.push_token_hours * 3600)
    return account, rules.mint_token(token_key(ctx), account.id, expires)


def account_for_token(ctx: ServerContext, session: Session, token: str | None) -> PushAccount | None:
    account_id = rules.token_account(token_key(ctx), token, time.time())
    account = session.get(PushAccount, account_id) if account_id is not None else None
    return account if account is not None and account.revoked_at is None else None


def refuse(
    session: Session,
    account: PushAccount,
    kind: str,
    detail: str,
    path: str,
    request: Request | None,
    status: int = 400,
) -> PushError:
    """Record a refusal for the unit's device administrator (a row and an audit entry), commit, and
    return the error to raise: 400 means the sender never retries."""
    session.rollback()
    session.add(PushRefusal(unit_id=account.unit_id, account_id=account.id, kind=kind, detail=detail[:500], path=path))
    audit(
        session,
        "push.refused",
        request=request,
        object_type="push_account",
        object_id=account.id,
        details={"kind": kind, "detail": detail, "path": path, "status": status},
    )
    session.commit()
    return PushError(status, detail)


def _unit_device(session: Session, account: PushAccount, serial: str, path: str, request: Request | None) -> Device:
    device = session.scalar(select(Device).where(Device.serial == serial))
    if device is None:
        raise refuse(session, account, "unknown_device", f"device {serial!r} is not in the register", path, request)
    if device.unit_id != account.unit_id:
        raise refuse(
            session, account, "other_unit_device", f"device {serial!r} belongs to another unit", path, request, 403
        )
    return device


def put_user(session: Session, account: PushAccount, uuid_: str, meta: dict[str, str], request: Request | None) -> None:
    """``Users/<uuid>``: the user's supplied ID (``UserID``) is the officer's number in this unit."""
    number = meta.get("userid") or ""
    path = f"Users/{uuid_}"
    officer = session.scalar(
        select(User).where(User.unit_id == account.unit_id, User.officer_no == number, User.officer_no.is_not(None))
    )
    if not number or officer is None:
        raise refuse(session, account, "unknown_user", f"no officer numbered {number!r} in this unit", path, request)
    row = session.scalar(select(PushUser).where(PushUser.account_id == account.id, PushUser.uuid == uuid_))
    if row is None:
        row = PushUser(account_id=account.id, uuid=uuid_)
        session.add(row)
    row.officer_id, row.officer_no, row.name = officer.id, number, meta.get("name")
    row.active, row.meta, row.updated_at = meta.get("active", "True").lower() != "false", meta, utcnow()
    session.flush()
    audit(
        session,
        "push.user_mapped",
        request=request,
        object_type="push_account",
        object_id=account.id,
        details={"uuid": uuid_, "officer_no": number, "name": meta.get("name")},
    )


def put_device(
    session: Session, account: PushAccount, serial: str, meta: dict[str, str], request: Request | None
) -> None:
    """``Devices/<serial>``: a recorder of the unit's register."""
    device = _unit_device(session, account, serial, f"Devices/{serial}", request)
    row = session.scalar(select(PushDevice).where(PushDevice.account_id == account.id, PushDevice.serial == serial))
    if row is None:
        row = PushDevice(account_id=account.id, serial=serial, device_id=device.id)
        session.add(row)
    row.name, row.meta, row.updated_at = meta.get("name"), meta, utcnow()
    session.flush()
    audit(
        session,
        "push.device_mapped",
        request=request,
        object_type="device",
        object_id=device.id,
        details={"serial": serial, "account_id": account.id, "name": meta.get("name")},
    )


def container(session: Session, account: PushAccount, name: str) -> PushContainer:
    row = session.scalar(
        select(PushContainer).where(PushContainer.account_id == account.id, PushContainer.name == name)
    )
    if row is None:
        raise PushError(404, "no such container")
    return row


def put_container(
    session: Session, account: PushAccount, name: str, meta: dict[str, str], request: Request | None
) -> int:
    """Create a recording container (201), or accept one that exists (202). The container is a transfer:
    its clips are recorded by the same code that records a docked recorder's files."""
    if name in rules.SYSTEM_CONTAINERS:
        return 202
    existing = session.scalar(
        select(PushContainer).where(PushContainer.account_id == account.id, PushContainer.name == name)
    )
    if existing is not None:
        existing.meta = {**existing.meta, **meta}
        return 202
    parsed = rules.parse_container_name(name)
    if parsed is None:
        raise refuse(
            session, account, "bad_container", "container name is not <user>_<device>_<date>_<time>", name, request
        )
    user = session.scalar(select(PushUser).where(PushUser.account_id == account.id, PushUser.uuid == parsed.user_uuid))
    if user is None:
        raise refuse(session, account, "unknown_user", f"user {parsed.user_uuid!r} was never registered", name, request)
    device = _unit_device(session, account, parsed.device_serial, name, request)
    station = session.get_one(Station, account.station_id)
    now = utcnow()
    opened = transfers.open_transfer(
        session,
        station,
        {
            "transfer_id": str(uuid.uuid4()),
            "device": {"serial": device.serial, "model": meta.get("bwcmodel") or device.model, "via": "push"},
            "officer": {"number": user.officer_no, "name": user.name},
            "docked_at": documents.utc_iso(now),
            "index": [],
        },
        unit_id=account.unit_id,
        own_unit=False,  # a push brings one recording, not the device's whole index: nothing vanished
    )
    opened.transfer.state = "uploading"
    row = PushContainer(
        account_id=account.id,
        name=name,
        unit_id=account.unit_id,
        transfer_id=opened.transfer.id,
        device_serial=device.serial,
        officer_no=user.officer_no,
        meta=meta,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        "push.recording_opened",
        request=request,
        object_type="transfer",
        object_id=opened.transfer.id,
        details={"container": name, **docked_evidence(opened.transfer, index=False), "meta": meta},
    )
    return 201


def post_container(
    session: Session, account: PushAccount, name: str, meta: dict[str, str], request: Request | None
) -> None:
    """Update a recording container's metadata; ``Status: Complete`` ends its transfer."""
    if name in rules.SYSTEM_CONTAINERS:
        return
    row = container(session, account, name)
    row.meta = {**row.meta, **meta}
    if meta.get("status", "").lower() == "complete" and row.status != "Complete":
        complete(session, row, request)


def complete(session: Session, row: PushContainer, request: Request | None) -> None:
    from evidence_server.transfers.models import Transfer

    objects = session.scalars(select(PushObject).where(PushObject.container_id == row.id)).all()
    waiting = [o.name for o in objects if o.state != "stored"]
    row.status, row.completed_at = "Complete", utcnow()
    transfer = session.get_one(Transfer, row.transfer_id)
    transfer.state = "done" if not waiting else "failed"
    transfer.completed_at = row.completed_at
    audit(
        session,
        "push.recording_complete",
        request=request,
        object_type="transfer",
        object_id=transfer.id,
        details={
            "container": row.name,
            "clips": sorted(o.name for o in objects if o.kind == "clip" and o.state == "stored"),
            "recordings": sorted(o.recording_id for o in objects if o.recording_id is not None),
            "not_received": waiting,
        },
    )


def put_small_object(
    session: Session,
    account: PushAccount,
    row: PushContainer,
    name: str,
    body: bytes,
    etag: str | None,
    meta: dict[str, str],
    request: Request | None,
) -> str:
    """A bookmark, a GNSS track, a key file: checked against the sender's MD5, kept, audited."""
    got = rules.md5_hex(body)
    path = f"{row.name}/{name}"
    if etag and etag.strip('"').lower() != got:
        raise refuse(session, account, "wrong_etag", f"ETag {etag} but the body's MD5 is {got}", path, request, 422)
    kind = rules.object_kind(name)
    points: list[dict[str, Any]] | None = None
    source = ""
    if kind == "track":
        try:
            source, points = tracks.parse(name, body)
        except tracks.TrackError as exc:
            raise refuse(session, account, "bad_track", str(exc), path, request) from exc
    obj = session.scalar(select(PushObject).where(PushObject.container_id == row.id, PushObject.name == name))
    if obj is None:
        obj = PushObject(container_id=row.id, name=name, kind=kind)
        session.add(obj)
    obj.md5, obj.size, obj.meta = got, len(body), meta
    obj.content = body.decode("utf-8", errors="replace")
    obj.state, obj.received_at = "stored", utcnow()
    sha = hashlib.sha256(body).hexdigest()
    if points is not None:
        track = session.scalar(select(Track).where(Track.container_id == row.id, Track.name == name))
        if track is None:
            track = Track(unit_id=row.unit_id, container_id=row.id, source=source, name=name, sha256=sha, points=[])
            session.add(track)
        track.points, track.sha256 = points, sha
    session.flush()
    audit(
        session,
        f"push.{kind}_received",
        request=request,
        object_type="push_object",
        object_id=obj.id,
        details={"container": row.name, "name": name, "md5": got, "sha256": sha, "size": len(body), "meta": meta},
    )
    return got


def refusals(session: Session, unit_id: int | None, limit: int = 200) -> list[dict[str, Any]]:
    query = select(PushRefusal).order_by(PushRefusal.at.desc()).limit(limit)
    if unit_id is not None:
        query = query.where(PushRefusal.unit_id == unit_id)
    return [
        {
            "id": r.id,
            "at": documents.utc_iso(r.at),
            "kind": r.kind,
            "detail": r.detail,
            "path": r.path,
            "account_id": r.account_id,
        }
        for r in session.scalars(query)
    ]


def object_listing(session: Session, row: PushContainer) -> list[dict[str, Any]]:
    """The container's stored objects as Swift lists them (``format=json``)."""
    objects = session.scalars(
        select(PushObject)
        .where(PushObject.container_id == row.id, PushObject.state == "stored")
        .order_by(PushObject.name)
    )
    return [
        {
            "name": o.name,
            "bytes": o.size or 0,
            "hash": o.md5 or "",
            "content_type": "application/octet-stream",
            "last_modified": documents.utc_iso(o.received_at or row.created_at).removesuffix("Z"),
        }
        for o in objects
    ]


@dataclass(frozen=True)
class Stored:
    body: bytes
    headers: dict[str, str]


def stored_object(session: Session, account: PushAccount, container_name: str, name: str) -> Stored:
    """A stored object's metadata (and, for small objects, its content); a clip's bytes are read as a recording."""
    if container_name in rules.SYSTEM_CONTAINERS:
        raise PushError(404, "no such object")
    row = container(session, account, container_name)
    obj = session.scalar(select(PushObject).where(PushObject.container_id == row.id, PushObject.name == name))
    if obj is None or obj.state != "stored":
        raise PushError(404, "no such object")
    headers = {f"X-Object-Meta-{k.title()}": v for k, v in obj.meta.items()}
    headers["ETag"] = obj.md5 or ""
    if obj.recording_id is not None:
        headers["X-Object-Meta-Custodia-Recording"] = str(obj.recording_id)
    body = b"" if obj.kind == "clip" else (obj.content or "").encode()
    return Stored(body, headers)


def post_object(
    session: Session,
    account: PushAccount,
    container_name: str,
    name: str,
    meta: dict[str, str],
    request: Request | None,
) -> None:
    """Replace an object's metadata (Swift POST semantics)."""
    row = container(session, account, container_name)
    obj = session.scalar(select(PushObject).where(PushObject.container_id == row.id, PushObject.name == name))
    if obj is None:
        raise PushError(404, "no such object")
    obj.meta = meta
    audit(
        session,
        "push.object_meta",
        request=request,
        object_type="push_object",
        object_id=obj.id,
        details={"container": row.name, "name": name, "meta": meta},
    )


def connection_file_for(session: Session, new: NewAccount, base_url: str) -> dict[str, object]:
    from evidence_server.accounts.models import Unit

    unit = session.get(Unit, new.account.unit_id)
    return rules.connection_file(
        site=unit.name if unit is not None else "Custodia",
        base_url=base_url,
        username=new.account.username,
        key=new.key,
        version="0.1.0",
        certificates=[],
    )
