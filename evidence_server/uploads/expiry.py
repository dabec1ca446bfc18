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
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.uploads.models import Upload, receiving

#: A staging file without an unfinished upload row is only removed once it is this old, so a
#: POST that is creating its row right now is never raced.
ORPHAN_GRACE_S = 3600.0


@dataclass
class ExpiryReport:
    expired: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def _last_activity(upload: Upload, staged: Path, idle_limit: float) -> tuple[float, int] | None:
    """(last activity, staged bytes) of an unfinished upload, from its staging file; (0, 0) for one with no
    staging file that is as old as the limit; None for one with no staging file that is younger."""
    try:
        st = staged.stat()
    except FileNotFoundError:  # bytes already in storage (a PATCH finalizes), or never staged
        if upload.created_at > utcnow() - timedelta(seconds=idle_limit):
            return None
        return 0.0, 0
    return st.st_mtime, st.st_size


def _expire(session: Session, upload: Upload, now: float, last: float, size: int, report: ExpiryReport) -> None:
    """Void one upload and audit it."""
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


def _void_idle(ctx: ServerContext, now: float, idle_limit: float, report: ExpiryReport) -> set[str]:
    """Void the unfinished uploads idle past the limit (committed); returns the ids of all unfinished ones."""
    with ctx.sessionmaker() as session:
        unfinished = session.scalars(select(Upload).where(receiving())).all()
        open_ids = {upload.id for upload in unfinished}
        for upload in unfinished:
            activity = _last_activity(upload, ctx.receiver.path(upload.id), idle_limit)
            if activity is not None and now - activity[0] >= idle_limit:
                _expire(session, upload, now, *activity, report)
        session.commit()
    return open_ids


def _remove_orphans(staging_dir: Path, open_ids: set[str], now: float, report: ExpiryReport) -> None:
    """Remove staging files of no unfinished upload once they are older than the grace period."""
    for part in staging_dir.glob("*.part"):
        if part.name.removesuffix(".part") in open_ids:
            continue
        try:
            st = part.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime >= ORPHAN_GRACE_S:
            part.unlink(missing_ok=True)
            report.orphan_files.append(part.name)
            report.bytes_freed += st.st_size


def _remove_stale_locks(staging_dir: Path, open_ids: set[str], now: float) -> None:
    """Remove lock files left by a process that died holding one."""
    for lock in (staging_dir / "locks").glob("*.lock"):
        try:
            old = now - lock.stat().st_mtime >= ORPHAN_GRACE_S
        except FileNotFoundError:
            continue
        if old and lock.name.removesuffix(".lock") not in open_ids:
            lock.unlink(missing_ok=True)


def expire_uploads(ctx: ServerContext, *, now: float | None = None) -> ExpiryReport:
    """Void unfinished uploads idle longer than ``upload_expiry_hours``; remove orphaned staging files."""
    report = ExpiryReport()
    if ctx.settings.upload_expiry_hours <= 0:
        return report
    now = time.time() if now is None else now
    open_ids = _void_idle(ctx, now, ctx.settings.upload_expiry_hours * 3600, report)
    for upload_id in report.expired:
        ctx.receiver.discard(upload_id)
    _remove_orphans(ctx.receiver.staging_dir, open_ids, now, report)
    _remove_stale_locks(ctx.receiver.staging_dir, open_ids, now)
    return report
