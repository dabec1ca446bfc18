"""Retention tables: each recording's retention state, legal holds, case kinds, policy versions, retention
changes and disposal requests (each with its approvals), and the disposal certificates.

Nothing here is ever deleted: a hold is lifted by stamping who, when and why; a request is decided by
stamping its outcome; a disposed recording keeps its row, its fingerprints and its certificate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow

#: ``Recording.fixity_state`` of a recording whose bytes were disposed of on approval.
DISPOSED = "disposed"


class RetentionPolicyVersion(Base):
    """The policy in force from ``created_at``; the newest row wins over the configured default."""

    __tablename__ = "retention_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    change_id: Mapped[int | None] = mapped_column(ForeignKey("retention_changes.id"))  # a shortening's approval
    reason: Mapped[str] = mapped_column(String(1000))


class RetentionState(Base):
    """How long one recording is kept, why, and what the object store was told."""

    __tablename__ = "retention_states"
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), primary_key=True)
    retain_until: Mapped[datetime | None] = mapped_column(index=True)  # None: no end date
    basis: Mapped[str] = mapped_column(String(16))  # retention.policy.Basis
    case_id: Mapped[int | None]  # the case the basis comes from (no FK: cases are another feature's)
    #: a person's extension beyond the policy (shortening it again needs two approvals)
    extended_until: Mapped[datetime | None]
    extended_for_good: Mapped[bool] = mapped_column(default=False)
    #: what the object store holds: its retain-until date (WORM stores only) and its legal hold
    lock_until: Mapped[datetime | None]
    storage_hold: Mapped[bool] = mapped_column(default=False)
    held: Mapped[bool] = mapped_column(default=False)  # covered by an active legal hold at the last run
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # when retain_until or basis last changed
    computed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    disposed_at: Mapped[datetime | None]


class CaseKind(Base):
    """A case marked as a kind the policy may keep for good (major case, obstruction, mass incident)."""

    __tablename__ = "retention_case_kinds"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(1000))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class LegalHold(Base):
    __tablename__ = "legal_holds"
    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(16), index=True)  # retention.holds.Target
    value: Mapped[str] = mapped_column(String(64))  # case or recording id, officer number, device serial
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)  # None: not one unit's
    reason: Mapped[str] = mapped_column(String(1000))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    placed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lift_reason: Mapped[str | None] = mapped_column(String(1000))


#: the fields of a hold the audit log records in full (retention.hold_placed, hold_lifted: details["hold"])
HOLD_EVIDENCE = (
    "target",
    "value",
    "unit_id",
    "reason",
    "placed_at",
    "placed_by_id",
    "lifted_at",
    "lifted_by_id",
    "lift_reason",
)


class RetentionChange(Base):
    """A change that shortens retention: it takes effect only once two different people approved it.

    ``subject`` is ``policy`` (a new policy), ``case_kind`` (a case's permanent kind removed),
    ``extension`` (a person's extension of a recording shortened) or ``recording`` (the system found a
    recording's retention would shorten, e.g. after it was unlinked from its case).
    """

    __tablename__ = "retention_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    current: Mapped[dict[str, Any]] = mapped_column(JSON)
    proposed: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|applied|rejected
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(String(1000))


class RetentionChangeApproval(Base):
    __tablename__ = "retention_change_approvals"
    __table_args__ = (UniqueConstraint("change_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("retention_changes.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(1000))


class DisposalRequest(Base):
    __tablename__ = "disposal_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|executed|rejected
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(String(1000))


#: the fields of a disposal request the audit log records in full at each step (details["request"])
REQUEST_EVIDENCE = (
    "reason",
    "status",
    "requested_at",
    "requested_by_id",
    "decided_at",
    "decided_by_id",
    "decision_note",
)


class DisposalItem(Base):
    __tablename__ = "disposal_items"
    __table_args__ = (UniqueConstraint("request_id", "recording_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("disposal_requests.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|disposed|skipped
    #: why a run left it (``skipped``): e.g. marked important (重要文件标记) and not yet reviewed
    skip_reason: Mapped[str | None] = mapped_column(String(500))


class DisposalApproval(Base):
    __tablename__ = "disposal_approvals"
    __table_args__ = (UniqueConstraint("request_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("disposal_requests.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(1000))


class DisposalCertificate(Base):
    """Proof of one recording's disposal: who, when, why and the approvals, signed by the server's key."""

    __tablename__ = "disposal_certificates"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("disposal_requests.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the signed certificate (custodia_wire.documents)
