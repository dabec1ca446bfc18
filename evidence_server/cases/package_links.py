"""Sharing a court package by link: a token that expires, is revocable, and under which every download is
audited. The package is exported as the link's maker would export it (their access decides what is in it)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.cases import access
from evidence_server.cases.models import Case
from evidence_server.cases.service import CaseError
from evidence_server.db import utcnow
from evidence_server.extraction import rules
from evidence_server.extraction.models import PackageLink


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_link(
    session: Session, user: User, case: Case, *, recipient: str, expires_at: datetime, request: Request | None
) -> tuple[PackageLink, str]:
    """A new link and its token (shown only now)."""
    problem = rules.link_expiry_problem(expires_at, utcnow())
    if problem:
        raise CaseError("bad_expiry", problem, 422)
    token = secrets.token_urlsafe(32)
    link = PackageLink(
        case_id=case.id,
        unit_id=case.unit_id,
        token_hash=token_hash(token),
        recipient=recipient,
        created_by_id=user.id,
        expires_at=expires_at,
    )
    session.add(link)
    session.flush()
    audit(
        session,
        "case.package_link",
        request=request,
        object_type="case",
        object_id=case.id,
        details={"link": link.id, "recipient": recipient, "expires_at": expires_at.isoformat()},
    )
    return link, token


def links_of(session: Session, case: Case) -> list[PackageLink]:
    return list(session.scalars(select(PackageLink).where(PackageLink.case_id == case.id).order_by(PackageLink.id)))


def revoke(session: Session, user: User, case: Case, link_id: int, request: Request | None) -> PackageLink:
    link = session.get(PackageLink, link_id)
    if link is None or link.case_id != case.id:
        raise CaseError("unknown_link", "no such link for this case", 404)
    if link.revoked_at is None:
        link.revoked_at, link.revoked_by_id = utcnow(), user.id
        audit(
            session,
            "case.package_link_revoked",
            request=request,
            object_type="case",
            object_id=case.id,
            details={"link": link.id},
        )
    return link


def usable(session: Session, token: str) -> tuple[PackageLink, Case, User] | None:
    """The link this token opens, its case and its maker, if it is still usable (else None, whatever the reason)."""
    link = session.scalar(select(PackageLink).where(PackageLink.token_hash == token_hash(token)))
    if link is None or not rules.link_usable(link.expires_at, link.revoked_at, utcnow()):
        return None
    case, maker = session.get(Case, link.case_id), session.get(User, link.created_by_id)
    if case is None or maker is None or not maker.active or Role(maker.role) not in access.EXPORTERS:
        return None
    return link, case, maker
