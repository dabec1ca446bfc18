"""Expiring abandoned uploads: an unfinished upload nobody has touched for a long time is void.

A station that went away for good (reinstalled, its journal lost) leaves staged bytes behind; an
upload whose staging file is gone (a crash right after its row was committed) is voided once it
is as old as the limit. Staging files of no unfinished upload (left by versions that made the file
before the row) are removed after an hour. The upload's last activity is its staging file's
modification time. Nothing verified is touched:
verified bytes live in evidence storage, not in staging.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.uploads.models import Upload

#: A staging file without an unfinished upload row is only removed once it is this old, so a
#: POST that is creating its row right now is never raced.
ORPHAN_GRACE_S = 3600.0


@dataclass
class ExpiryReport:
    expired: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def expire_uploads(ctx: ServerContext, *, now: float | None = None) -> ExpiryReport:
    """Void unfinished uploads idle longer than ``upload_expiry_hours``; remove orphaned staging files."""
    settings = ctx.settings
    report = ExpiryReport()
    if settings.upload_expiry_hours <= 0:
        return report
    now = time.time() if now is None else now
    idle_limit = settings.upload_expiry_hours * 3600
    receiver = ctx.receiver
    with ctx.sessionmaker() as session:
        unfinished = session.scalars(select(Upload).where(Upload.state == "receiving")).all()
        open_ids = {upload.id for upload in unfinished}
        for upload in unfinished:
            staged = receiver.path(upload.id)
            try:
                st = staged.stat()
                last, size = st.st_mtime, st.st_size
            except FileNotFoundError:  # bytes already in storage (a PATCH finalizes), or never staged
                if upload.created_at > utcnow() - timedelta(seconds=idle_limit):
                    continue
                last, size = 0.0, 0
            if now - last < idle_limit:
                continue
            upload.state = "expired"
            upload.completed_at = utcnow()
            report.expired.append(upload.id)
            report.bytes_freed += size
            audit(
                session,
                "upload.expired",
                object_type="upload",
                object_id=upload.id,
                details={
                    "path": upload.path,
                    "transfer_id": upload.transfer_id,
                    "staged_bytes": size,
                    "idle_hours": round((now - last) / 3600, 1) if last else None,
                },
            )
        session.commit()
    for upload_id in report.expired:
        receiver.discard(upload_id)
    for part in receiver.staging_dir.glob("*.part"):
        upload_id = part.name.removesuffix(".part")
        if upload_id in open_ids:
            continue
        try:
            st = part.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime >= ORPHAN_GRACE_S:
            part.unlink(missing_ok=True)
            report.orphan_files.append(part.name)
            report.bytes_freed += st.st_size
    for lock in (receiver.staging_dir / "locks").glob("*.lock"):  # left by a process that died holding one
        try:
            old = now - lock.stat().st_mtime >= ORPHAN_GRACE_S
        except FileNotFoundError:
            continue
        if old and lock.name.removesuffix(".lock") not in open_ids:
            lock.unlink(missing_ok=True)
    return report
