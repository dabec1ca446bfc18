"""The 电子数据提取清单 of a transfer and of a case's court package (art. 14 of the 2016 rules).

A transfer's list names the device, the officer, the station, the operator who issues it and the time,
and each file received with its category, format, size and check values. A package's list names the
case and, for each original, the same and where it came from. Both are signed and kept
(``extraction.issue``); the package's list also travels inside the package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import documents, extraction, keys
from evidence_server.accounts.models import User
from evidence_server.cases import linking
from evidence_server.cases.models import Case
from evidence_server.config import Settings
from evidence_server.db import utcnow
from evidence_server.extraction import issue
from evidence_server.extraction.forms import list_form
from evidence_server.extraction.models import IssuedDocument
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer


def _iso(value: datetime | None) -> str | None:
    return documents.utc_iso(value) if value else None


def transfer_subject(session: Session, transfer: Transfer) -> dict[str, Any]:
    station = session.get(Station, transfer.station_id)
    return {
        "id": transfer.id,
        "device": {k: transfer.device.get(k) for k in ("serial", "family", "model")},
        "officer": {"number": transfer.officer_no, "name": transfer.officer_name},
        "station": {"id": transfer.station_id, "name": station.name if station else None},
        "docked_at": _iso(transfer.docked_at),
        "completed_at": _iso(transfer.completed_at),
    }


def file_of(rec: Recording, path: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"recording_id": rec.id}
    if rec.important:  # 重要文件标记: who marked it (the recorder, and how, or a person)
        extra["important"] = {"source": rec.important_source, "how": rec.important_how}
    if source is not None:
        extra["source"] = source
    return extraction.file_item(
        path=path,
        name=rec.original_name,
        size=rec.size,
        sha256=rec.sha256,
        blake3=rec.blake3,
        sm3=rec.sm3,
        container=rec.container_format,
        **extra,
    )


def _issue_list(
    session: Session,
    signer: keys.Signer,
    user: User,
    request: Request | None,
    *,
    kind: str,
    content: dict[str, Any],
    unit_id: int,
    transfer_id: str | None = None,
    case_id: int | None = None,
    issued_at: datetime | None = None,
    settings: Settings | None = None,
) -> IssuedDocument:
    key = issue.content_key({**content, "extractor": issue.person(user)})
    where: dict[str, Any] = {"transfer_id": transfer_id} if transfer_id else {"case_id": case_id}
    found = issue.existing(session, kind, key, **where)
    if found is not None:
        return found
    when = issued_at or utcnow()
    body = {
        "format": extraction.LIST_FORMAT,
        "list_id": issue.new_uid(),
        "issued_at": documents.utc_iso(when),
        "extractor": issue.person(user),
        **content,
    }
    return issue.issue(
        session,
        signer,
        kind=kind,
        body=body,
        form=list_form,
        key=key,
        unit_id=unit_id,
        user=user,
        issued_at=when,
        request=request,
        transfer_id=transfer_id,
        case_id=case_id,
        settings=settings,
    )


def transfer_list(
    session: Session,
    signer: keys.Signer,
    user: User,
    transfer_id: str,
    request: Request | None,
    settings: Settings | None = None,
) -> IssuedDocument:
    """The list of a transfer the user may see (404 otherwise): every recording it brought in."""
    transfer = linking.get_transfer(session, user, transfer_id)
    recs = sorted(linking.recordings_of_transfer(session, transfer.id), key=lambda r: (r.original_path, r.id))
    content = {
        "subject": "transfer",
        "transfer": transfer_subject(session, transfer),
        "files": [file_of(r, r.original_path) for r in recs],
    }
    return _issue_list(
        session,
        signer,
        user,
        request,
        kind="transfer-list",
        content=content,
        unit_id=transfer.unit_id,
        transfer_id=transfer.id,
        settings=settings,
    )


def package_list(
    session: Session,
    signer: keys.Signer,
    user: User,
    case: Case,
    summary: dict[str, Any],
    files: list[tuple[Recording, str]],
    request: Request | None,
    settings: Settings | None = None,
) -> IssuedDocument:
    """The list of a case's package: ``files`` are its originals with their paths in the package."""
    transfers: dict[str, dict[str, Any]] = {}
    items = []
    for rec, path in files:
        if rec.transfer_id not in transfers:
            transfer = session.get(Transfer, rec.transfer_id)
            transfers[rec.transfer_id] = transfer_subject(session, transfer) if transfer else {"id": rec.transfer_id}
        t = transfers[rec.transfer_id]
        source = {
            "transfer_id": rec.transfer_id,
            "device_serial": rec.device_serial,
            "officer": {"number": rec.officer_no, "name": rec.officer_name},
            "station": (t.get("station") or {}).get("name"),
            "docked_at": t.get("docked_at"),
        }
        items.append(file_of(rec, path, source))
    case_block = {k: summary.get(k) for k in ("id", "number", "name", "enforcement_matter", "unit")}
    content = {"subject": "package", "case": case_block, "files": items}
    return _issue_list(
        session,
        signer,
        user,
        request,
        kind="package-list",
        content=content,
        unit_id=case.unit_id,
        case_id=case.id,
        settings=settings,
    )


def kept(
    session: Session, kind: str, uid: str, *, case_id: int | None = None, transfer_id: str | None = None
) -> IssuedDocument | None:
    """A kept document of this case or transfer (the caller has checked that the user may see it)."""
    q = select(IssuedDocument).where(IssuedDocument.uid == uid, IssuedDocument.kind == kind)
    if case_id is not None:
        q = q.where(IssuedDocument.case_id == case_id)
    if transfer_id is not None:
        q = q.where(IssuedDocument.transfer_id == transfer_id)
    return session.scalar(q)
