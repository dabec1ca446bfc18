"""Handover receipts (移交回执): a court package handed to a procuratorate, a court or a lawyer.

The receipt names the recipient (organisation, person, ID), the package by its digest (the SHA-256
and BLAKE3 of its signed ``manifest.json``, which covers every other byte of it), the time and the
handing officer. Only a package this server exported for this case can be handed over: its digest must
be the one an audited ``case.export`` entry of the case recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import documents, extraction, keys
from evidence_server.accounts.models import User
from evidence_server.audit.models import AuditEvent
from evidence_server.cases.export import case_summary
from evidence_server.cases.models import Case
from evidence_server.cases.service import CaseError
from evidence_server.config import Settings
from evidence_server.db import utcnow
from evidence_server.extraction import issue
from evidence_server.extraction.forms import handover_form
from evidence_server.extraction.models import IssuedDocument

KIND = "handover-receipt"
_DIGEST = re.compile(r"^(?:(sha256|blake3):)?([0-9a-f]{64})$")


@dataclass(frozen=True)
class Recipient:
    kind: str
    organisation: str
    person: str
    id_number: str


def parse_digest(text: str) -> tuple[str, str]:
    """``sha256:<hex>``, ``blake3:<hex>`` or bare hex (SHA-256, as ``sha256sum`` prints it). Pure."""
    m = _DIGEST.match(text.strip().lower())
    if not m:
        raise CaseError("bad_digest", "the package digest is sha256:<64 hex>, blake3:<64 hex> or 64 hex digits", 422)
    return m.group(1) or "sha256", f"{m.group(1) or 'sha256'}:{m.group(2)}"


def exported_package(session: Session, case: Case, digest: str) -> dict[str, Any]:
    """The audited export of this case whose manifest has this digest (else 422)."""
    algo, value = parse_digest(digest)
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == "case.export", AuditEvent.object_type == "case", AuditEvent.object_id == str(case.id)
        )
        .order_by(AuditEvent.seq.desc())
    )
    for ev in events:
        details = ev.details or {}
        if details.get(f"manifest_{algo}") == value:
            return {
                "filename": details.get("filename"),
                "manifest_sha256": details.get("manifest_sha256"),
                "manifest_blake3": details.get("manifest_blake3"),
                "exported_at": documents.utc_iso(ev.at),
                "export_audit_seq": ev.seq,
                "extraction_list": details.get("extraction_list"),
            }
    raise CaseError(
        "unknown_package", f"no package of case {case.number} with the digest {value} was exported here", 422
    )


def hand_over(
    session: Session,
    signer: keys.Signer,
    user: User,
    case: Case,
    *,
    recipient: Recipient,
    package_digest: str,
    note: str | None,
    request: Request | None,
    settings: Settings | None = None,
) -> IssuedDocument:
    if recipient.kind not in extraction.RECIPIENT_KINDS:
        raise CaseError("bad_recipient", f"recipient kind is one of {sorted(extraction.RECIPIENT_KINDS)}", 422)
    package = exported_package(session, case, package_digest)
    now = utcnow()
    summary = case_summary(session, case)
    body = {
        "format": extraction.HANDOVER_FORMAT,
        "receipt_id": issue.new_uid(),
        "case": {k: summary.get(k) for k in ("id", "number", "name", "enforcement_matter", "unit")},
        "package": package,
        "recipient": {
            "kind": recipient.kind,
            "organisation": recipient.organisation,
            "person": recipient.person,
            "id_number": recipient.id_number,
        },
        "handed_at": documents.utc_iso(now),
        "handed_by": issue.person(user),
        "note": note,
    }
    return issue.issue(
        session,
        signer,
        kind=KIND,
        body=body,
        form=handover_form,
        key=issue.content_key(body),
        unit_id=case.unit_id,
        user=user,
        issued_at=now,
        request=request,
        case_id=case.id,
        settings=settings,
    )


def receipts_of(session: Session, case: Case) -> list[IssuedDocument]:
    return list(
        session.scalars(
            select(IssuedDocument)
            .where(IssuedDocument.kind == KIND, IssuedDocument.case_id == case.id)
            .order_by(IssuedDocument.id)
        )
    )
