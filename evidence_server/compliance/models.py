"""Compliance flags (违规情形) for legal-affairs review, their history, and the scans that raise them.

A flag is kept per natural key (``key``): a scan that finds the same violation again updates it,
never adds a second one. A flag the rules no longer find is ``cleared`` (kept, with its review);
its ``kind`` may change within its key when later evidence arrives (not transferred → late).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow

#: The review states, in workflow order.
STATES = ("open", "under_review", "confirmed", "dismissed")


class ComplianceFlag(Base):
    __tablename__ = "compliance_flags"
    __table_args__ = (
        Index("ix_compliance_flags_unit_at", "unit_id", "at"),
        Index("ix_compliance_flags_kind_at", "kind", "at"),
        # the dashboard's aggregates: flags that count, by time, read from the index alone
        Index(
            "ix_compliance_flags_active_at",
            "at",
            postgresql_include=["kind", "state", "unit_id", "officer_no", "checkout_entry_id"],
            postgresql_where=text("cleared_at IS NULL"),
            sqlite_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the natural key (rules.py / access.py)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]  # when the violation happened
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    device_serial: Mapped[str | None] = mapped_column(String(64), index=True)
    officer_no: Mapped[str | None] = mapped_column(String(32), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)  # rule 9: who accessed
    #: the checkout whose footage it concerns (no FK: the ledger's tables are another feature's)
    checkout_entry_id: Mapped[int | None] = mapped_column(index=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence_digest: Mapped[str] = mapped_column(String(64))

    state: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)

    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(index=True)  # the rules no longer find it
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlagEvent(Base):
    """One step in a flag's life: raised, changed, cleared, assigned, reviewed, commented, explained."""

    __tablename__ = "compliance_flag_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("compliance_flags.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the scan
    actor_role: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ComplianceScan(Base):
    """One run of the rules: full (every device and the audit log) or for some devices or users."""

    __tablename__ = "compliance_scans"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # full | devices | access
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    as_of: Mapped[datetime]  # the "now" the rules judged at
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
