"""Issued documents: extraction lists (电子数据提取清单) and handover receipts (移交回执), kept as issued.

Each row holds the signed JSON twin and the PDF exactly as they were handed out, so a second download
gives the same bytes (and the same digests the audit entry named). Rows are never changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow

#: what a document is about
KINDS = ("transfer-list", "package-list", "handover-receipt")


class IssuedDocument(Base):
    __tablename__ = "issued_documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)  # the id printed on the paper and in the JSON
    kind: Mapped[str] = mapped_column(String(24))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    transfer_id: Mapped[str | None] = mapped_column(String(36), index=True)
    case_id: Mapped[int | None] = mapped_column(index=True)
    #: SHA-256 (hex) of what the document lists: a list is issued anew only when that changes
    content_key: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    json_sha256: Mapped[str] = mapped_column(String(71))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(71))
    #: RFC 3161 time-stamp token over the JSON twin's exact bytes, when an authority is configured
    tst: Mapped[bytes | None] = mapped_column(LargeBinary)


class PackageLink(Base):
    """A link that lets someone without an account download a case's court package until it expires.

    Only the SHA-256 of its token is kept (the token is shown once, when the link is made); every download
    under it is audited; it can be revoked. Its expiry is required and bounded (``rules.link_expiry``).
    """

    __tablename__ = "package_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    recipient: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    downloads: Mapped[int] = mapped_column(default=0)
