"""What the retention pages list: policy versions, holds, requests, changes and certificates, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.retention import service
from evidence_server.retention.models import (
    DisposalCertificate,
    DisposalRequest,
    LegalHold,
    RetentionChange,
    RetentionPolicyVersion,
)


def policy_history(session: Session, limit: int = 20) -> list[RetentionPolicyVersion]:
    return list(session.scalars(select(RetentionPolicyVersion).order_by(RetentionPolicyVersion.id.desc()).limit(limit)))


def holds(session: Session, user: User, limit: int = 300) -> list[LegalHold]:
    """The holds this user may see, those in force first."""
    q = service.holds_visible(user).order_by(LegalHold.lifted_at.is_not(None), LegalHold.id.desc()).limit(limit)
    return list(session.scalars(q))


def disposal_requests(session: Session, limit: int = 100) -> list[DisposalRequest]:
    """Pending requests first, then the newest decided."""
    q = select(DisposalRequest).order_by(DisposalRequest.status != "pending", DisposalRequest.id.desc()).limit(limit)
    return list(session.scalars(q))


def retention_changes(session: Session, limit: int = 100) -> list[RetentionChange]:
    q = select(RetentionChange).order_by(RetentionChange.status != "pending", RetentionChange.id.desc()).limit(limit)
    return list(session.scalars(q))


def certificates(session: Session, limit: int = 300) -> list[DisposalCertificate]:
    return list(session.scalars(select(DisposalCertificate).order_by(DisposalCertificate.id.desc()).limit(limit)))


def certificate(session: Session, certificate_id: int) -> DisposalCertificate | None:
    return session.get(DisposalCertificate, certificate_id)
