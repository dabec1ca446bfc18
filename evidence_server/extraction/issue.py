"""Issuing a document: lay out its PDF, sign the PDF and the JSON twin, keep both, name them in the audit log.

A list is issued anew only when what it lists changes (``content_key``): asking twice for the list of
the same transfer by the same person gives the same document, the same bytes and the same digests.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import documents, extraction, keys
from evidence_server.accounts.models import User
from evidence_server.audit import tsa
from evidence_server.audit.service import record as audit
from evidence_server.config import Settings
from evidence_server.extraction.models import IssuedDocument
from evidence_server.extraction.pdf import Form, render

#: how the log names an issued document (its row id is the entry's object id)
OBJECT_TYPE = "issued_document"
#: the entries that record a document as issued, with the digests of both its forms
ISSUED_ACTIONS = ("transfer-list.issued", "package-list.issued", "handover-receipt.issued")


def evidence(row: IssuedDocument) -> dict[str, Any]:
    """What the log records of a kept document, recomputed from what is kept (the rows check compares them)."""
    return {
        "document": row.uid,
        "json_sha256": "sha256:" + hashlib.sha256(extraction.to_bytes(row.document)).hexdigest(),
        "pdf_sha256": "sha256:" + hashlib.sha256(row.pdf).hexdigest(),
    }


def content_key(content: Any) -> str:
    return hashlib.sha256(documents.jcs(content)).hexdigest()


def person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "name": user.display_name, "number": user.officer_no}


def existing(session: Session, kind: str, key: str, **where: Any) -> IssuedDocument | None:
    q = select(IssuedDocument).where(IssuedDocument.kind == kind, IssuedDocument.content_key == key)
    for column, value in where.items():
        q = q.where(getattr(IssuedDocument, column) == value)
    return session.scalar(q.order_by(IssuedDocument.id.desc()).limit(1))


def issue(
    session: Session,
    signer: keys.Signer,
    *,
    kind: str,
    body: dict[str, Any],
    form: Callable[[dict[str, Any]], Form],
    key: str,
    unit_id: int,
    user: User | None,
    issued_at: datetime,
    request: Request | None,
    transfer_id: str | None = None,
    case_id: int | None = None,
    settings: Settings | None = None,
) -> IssuedDocument:
    """Sign and keep a new document; its audit entry names the digests of both forms. With ``settings`` naming
    a time-stamping authority, the JSON twin's bytes are time-stamped too (none when it fails: still issued)."""
    body = {**body, "signer": extraction.signer_block(signer.public)}
    pdf = render(form(body))
    body["pdf"] = extraction.pdf_block(pdf, signer.sign(pdf))
    signed = documents.sign(body, signer)
    json_bytes = extraction.to_bytes(signed)
    json_sha256 = "sha256:" + hashlib.sha256(json_bytes).hexdigest()
    stamp = (
        tsa.stamp_for(settings, json_bytes, f"{kind} {body.get('list_id') or body.get('receipt_id')}")
        if settings
        else None
    )
    pdf_sha256 = body["pdf"]["sha256"]
    uid = str(body.get("list_id") or body.get("receipt_id"))
    row = IssuedDocument(
        uid=uid,
        kind=kind,
        unit_id=unit_id,
        transfer_id=transfer_id,
        case_id=case_id,
        content_key=key,
        issued_at=issued_at,
        issued_by_id=user.id if user else None,
        document=signed,
        json_sha256=json_sha256,
        pdf=pdf,
        pdf_sha256=pdf_sha256,
        tst=stamp[0] if stamp else None,
    )
    session.add(row)
    session.flush()  # its id names it in the log
    audit(
        session,
        f"{kind}.issued",
        request=request,
        actor=user,
        object_type=OBJECT_TYPE,
        object_id=row.id,
        details={
            "document": uid,
            "format": signed["format"],
            "case_id": case_id,
            "transfer_id": transfer_id,
            "json_sha256": json_sha256,
            "pdf_sha256": pdf_sha256,
            "files": len(signed.get("files") or []),
            "timestamped": stamp is not None,
        },
    )
    session.flush()
    return row


def new_uid() -> str:
    return str(uuid.uuid4())


def downloaded(session: Session, row: IssuedDocument, form_name: str, request: Request | None, user: User) -> None:
    """Each download is in the audit log, with the digest of what was handed out."""
    audit(
        session,
        f"{row.kind}.download",
        request=request,
        actor=user,
        object_type=OBJECT_TYPE,
        object_id=row.id,
        details={
            "document": row.uid,
            "case_id": row.case_id,
            "transfer_id": row.transfer_id,
            "form": form_name,
            "sha256": digest_of(row, form_name),
        },
    )


def digest_of(row: IssuedDocument, form_name: str) -> str:
    """The SHA-256 of one form of a kept document, as ``sha256sum`` prints it (with ``sha256:``)."""
    if form_name == "pdf":
        return row.pdf_sha256
    if form_name == "json":
        return row.json_sha256
    return "sha256:" + hashlib.sha256(row.tst or b"").hexdigest()


def payload(row: IssuedDocument, form_name: str) -> tuple[bytes, str, str]:
    """The bytes, media type and file name of one form of a kept document."""
    if form_name == "pdf":
        return row.pdf, "application/pdf", f"{row.kind}-{row.uid}.pdf"
    if form_name == "tst":
        return row.tst or b"", "application/octet-stream", f"{row.kind}-{row.uid}.json.tst"
    return extraction.to_bytes(row.document), "application/json", f"{row.kind}-{row.uid}.json"
