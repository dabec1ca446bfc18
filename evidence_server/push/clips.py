"""A clip object: received into staging like a tus upload, then recorded by ``uploads.finalize``.

The sender gives only an MD5 (its ETag). Custody starts at the server's receipt: the MD5 is checked
on the bytes as they arrive, BLAKE3 and SHA-256 are computed in the same pass, and the upload is then
declared with those digests and finalized by the code every docked file goes through (content-addressed
storage, the recording, its sighting, the audit entry, probing and case linking).
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.push.models import PushAccount, PushContainer, PushObject
from evidence_server.push.service import PushError, refuse
from evidence_server.transfers.models import Transfer
from evidence_server.uploads import finalize
from evidence_server.uploads.models import IntegrityIncident, Upload
from evidence_server.uploads.receiver import Digests


@dataclass(frozen=True)
class Begun:
    upload_id: str | None  # None: the clip is held already with this MD5 (a retry), nothing to receive
    discard: list[str]


def admit(ctx: ServerContext, row: PushContainer, length: int | None) -> None:
    """503 past the recorder's rate, 507 when staging lacks room for the clip and the reserve."""
    counter = ctx.limits.push_objects
    wait = counter.take(row.device_serial) if counter is not None else None
    if wait is not None:
        raise PushError(
            503, f"too many objects from {row.device_serial}; retry in {wait} s", {"Retry-After": str(wait)}
        )
    if length is not None and length > ctx.settings.max_upload_bytes:
        raise PushError(400, "clip larger than this server takes")
    free = shutil.disk_usage(ctx.receiver.staging_dir).free
    if free < (length or 0) + ctx.settings.push_staging_reserve_bytes:
        raise PushError(507, "server staging area is full; retry later")


def begin(session: Session, row: PushContainer, name: str, etag: str | None, meta: dict[str, str]) -> Begun:
    """The upload that receives this PUT; an earlier unfinished one of the same object is void now
    (a restart mid-object: the sender's retry starts again from the first byte)."""
    if row.status == "Complete":
        raise PushError(400, "the recording is complete; nothing more is taken")
    obj = session.scalar(select(PushObject).where(PushObject.container_id == row.id, PushObject.name == name))
    md5 = etag.strip('"').lower() if etag else None
    if obj is not None and obj.state == "stored" and md5 is not None and obj.md5 == md5:
        return Begun(None, [])
    if obj is None:
        obj = PushObject(container_id=row.id, name=name, kind="clip")
        session.add(obj)
    discard = []
    if obj.upload_id is not None and obj.state == "receiving":
        old = session.get(Upload, obj.upload_id)
        if old is not None and old.state == "receiving":
            old.state, old.completed_at = "superseded", utcnow()
            discard.append(old.id)
    transfer = session.get_one(Transfer, row.transfer_id)
    upload = Upload(
        id=secrets.token_hex(16),
        station_id=transfer.station_id,
        transfer_id=transfer.id,
        path=f"{row.name}/{name}",
        length=0,
        declared_blake3="",
        declared_sha256="",
        meta={"started_at": meta.get("starttimeiso") or "", "mtime": "", "copied_at": ""},
    )
    session.add(upload)
    obj.upload_id, obj.state, obj.md5, obj.meta = upload.id, "receiving", md5, meta
    session.commit()
    return Begun(upload.id, discard)


def finish(
    ctx: ServerContext,
    session: Session,
    account: PushAccount,
    row: PushContainer,
    name: str,
    upload_id: str,
    digests: Digests,
    md5: str,
    request: Request | None,
) -> int:
    """Check the sender's MD5, then record the clip as a docked file is recorded. Returns the recording id.

    Raises PushError 422 on a wrong ETag (nothing kept), StorageFullError when storage is full (the
    staged bytes stay until the retry supersedes them; nothing is recorded).
    """
    obj = session.scalar(select(PushObject).where(PushObject.container_id == row.id, PushObject.name == name))
    upload = session.get_one(Upload, upload_id)
    if obj is None or obj.upload_id != upload_id or upload.state != "receiving":
        raise PushError(409, "a newer upload of this object took over")
    got = digests.hasher.result()
    path = f"{row.name}/{name}"
    if obj.md5 is not None and obj.md5 != md5:
        _refuse_wrong_etag(ctx, session, account, upload, path, obj.md5, md5, got.size, request)
    upload.length, upload.declared_blake3, upload.declared_sha256 = got.size, got.blake3, got.sha256
    _index_clip(session, row, path, got.size, upload.meta.get("started_at") or None, md5)
    obj.md5, obj.size, obj.state, obj.received_at = md5, got.size, "stored", utcnow()
    session.flush()
    details = {"container": row.name, "name": name, "size": got.size, "sender_md5": md5}
    # the sender gives an MD5 only: the chain of custody starts at this server's receipt
    details |= {"blake3": got.blake3, "sha256": got.sha256, "chain_starts": "server_receipt"}
    audit(session, "push.clip_received", request=request, object_type="upload", object_id=upload.id, details=details)
    result = finalize.finalize(ctx, session, upload, request)
    if isinstance(result, finalize.Rejected):  # cannot happen: declared from the received bytes themselves
        raise PushError(500, "received bytes changed while being recorded")
    obj = session.get_one(PushObject, obj.id)
    obj.recording_id, obj.upload_id = result.recording_id, None
    transfer = session.get_one(Transfer, row.transfer_id)
    transfer.files_done = sum(1 for _ in transfer.index)
    session.commit()
    return result.recording_id


def _refuse_wrong_etag(
    ctx: ServerContext,
    session: Session,
    account: PushAccount,
    upload: Upload,
    path: str,
    declared: str,
    md5: str,
    size: int,
    request: Request | None,
) -> NoReturn:
    """The body's MD5 is not the ETag the sender declared: an incident, nothing kept, 422."""
    upload.state, upload.completed_at = "rejected", utcnow()
    session.add(
        IntegrityIncident(
            kind="push_md5_mismatch",
            station_id=upload.station_id,
            upload_id=upload.id,
            transfer_id=upload.transfer_id,
            details={"path": path, "declared_md5": declared, "received_md5": md5, "size": size},
        )
    )
    session.commit()
    ctx.receiver.discard(upload.id)
    raise refuse(session, account, "wrong_etag", f"ETag {declared} but the body's MD5 is {md5}", path, request, 422)


def _index_clip(session: Session, row: PushContainer, path: str, size: int, started_at: Any, md5: str) -> None:
    """The clip in its transfer's index, as a dock's index lists a file (replacing an earlier attempt)."""
    transfer = session.get_one(Transfer, row.transfer_id)
    entry = {"path": path, "size": size, "started_at": started_at, "md5": md5}
    transfer.index = [e for e in transfer.index if e["path"] != path] + [entry]
    transfer.files_total, transfer.bytes_total = len(transfer.index), sum(int(e["size"]) for e in transfer.index)


def abandon(ctx: ServerContext, session: Session, upload_id: str) -> None:
    """An upload that cannot finish (the client went away, no room): nothing of it is kept; the sender
    retries the whole object, and the object's earlier stored state, if any, is untouched."""
    session.rollback()
    upload = session.get(Upload, upload_id)
    if upload is not None and upload.state == "receiving":
        upload.state, upload.completed_at = "terminated", utcnow()
        audit(
            session,
            "push.clip_abandoned",
            object_type="upload",
            object_id=upload.id,
            details={"path": upload.path},
        )
        session.commit()
    ctx.receiver.discard(upload_id)
