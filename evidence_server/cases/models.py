"""Cases (案件), the links of recordings to them, and the sharing of a case with other people.

A link is never deleted: unlinking stamps who, when and why on it, and linking again makes a new
row, so the table itself is the history of every link and unlink (the audit log has them too).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow

#: How a link came about.
ORIGINS = ("checkout", "dock", "manual")


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)  # normalised (cases.numbers.normalize)
    name: Mapped[str] = mapped_column(String(300))
    enforcement_matter: Mapped[str | None] = mapped_column(String(500))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    #: the officers handling the case: [{"officer_no": …, "name": …}]
    officers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    opened_on: Mapped[date | None]
    closed_on: Mapped[date | None]
    created_via: Mapped[str] = mapped_column(String(16), default="manual")  # manual | checkout | dock
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


#: what ``case.create`` and ``case.update`` record of a case (``details.case``), for the rows check: its number,
#: name and matter, the unit that sees it (and so the footage linked to it), its officers, and whether it is
#: open or closed and since when (retention runs from its closing)
CASE_EVIDENCE = (
    "number",
    "name",
    "enforcement_matter",
    "unit_id",
    "officers",
    "status",
    "opened_on",
    "closed_on",
    "created_via",
)


class CaseLink(Base):
    """A recording in a case: from a checkout's task, from the dock, or by a case handler's hand."""

    __tablename__ = "case_links"
    __table_args__ = (
        Index(
            "uq_case_links_active",
            "case_id",
            "recording_id",
            unique=True,
            sqlite_where=text("unlinked_at IS NULL"),
            postgresql_where=text("unlinked_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    origin: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    #: the checkout entry a "checkout" link came from (no FK: the ledger's tables are another feature's)
    checkout_entry_id: Mapped[int | None]
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    unlinked_at: Mapped[datetime | None]
    unlinked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    unlink_reason: Mapped[str | None] = mapped_column(String(500))


#: the fields of a link that the audit log records in full (case.link, case.unlink: details["link"])
LINK_EVIDENCE = (
    "case_id",
    "recording_id",
    "origin",
    "reason",
    "checkout_entry_id",
    "linked_at",
    "linked_by_id",
    "unlinked_at",
    "unlinked_by_id",
    "unlink_reason",
)


class CaseShare(Base):
    """A case opened to a user or a whole unit beyond the case's own unit."""

    __tablename__ = "case_shares"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    shared_at: Mapped[datetime] = mapped_column(default=utcnow)
    shared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


#: what ``case.share`` records of a share (a case opened to a user or a unit beyond its own), for the rows check
SHARE_EVIDENCE = ("case_id", "user_id", "unit_id", "reason")
