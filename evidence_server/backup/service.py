"""A whole backup and a whole restore, and the checks that prove a restore is the system it was."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, select

from evidence_server.backup import BACKUP_FORMAT, database, objects
from evidence_server.backup.database import BackupError
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.recordings.models import Recording

log = logging.getLogger(__name__)


def _heads(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return sorted(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def create_backup(settings: Settings, dest: Path) -> dict[str, Any]:
    """Back up database, objects and signing key into ``dest`` (new, or an earlier backup to refresh)."""
    if dest.exists() and any(dest.iterdir()) and not (dest / "manifest.json").exists():
        raise BackupError(f"{dest} holds other files: give an empty folder or an earlier backup")
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)  # it holds the server's private key
    (dest / "manifest.json").unlink(missing_ok=True)  # an interrupted refresh leaves no valid backup
    started = utcnow()
    ctx = ServerContext(settings)
    try:
        db_file = database.dump(settings.database_url, dest)  # first: every object it names exists already
        with ctx.sessionmaker() as session:
            keys = objects.wanted(session, ctx.store)
            recordings = session.scalar(select(func.count()).select_from(Recording)) or 0
        previous = {e.key: e for e in objects.load_index(dest / "objects.json")}
        damaged: list[str] = []
        entries, problems = objects.back_up(ctx.store, keys, dest / "objects", previous, damaged)
        _record_damage(ctx, damaged)
        objects.remove_stale(dest / "objects", {e.key for e in entries})
        objects.save_index(entries, dest / "objects.json")
        key_file = settings.signing_key_file
        assert key_file is not None
        if not key_file.exists():
            raise BackupError(f"no signing key at {key_file}")
        (dest / "keys").mkdir(exist_ok=True)
        kept = {"signing_key": key_file}
        if settings.sm2_key_file is not None and settings.sm2_key_file.exists():  # a server that signs with SM2
            kept["sm2_key"] = settings.sm2_key_file
        for key_path in kept.values():
            shutil.copy2(key_path, dest / "keys" / key_path.name)
            os.chmod(dest / "keys" / key_path.name, 0o600)
        manifest = {
            "format": BACKUP_FORMAT,
            "started_at": started.isoformat(),
            "finished_at": utcnow().isoformat(),
            "database": {
                "kind": database.kind_of(settings.database_url),
                "file": db_file,
                "alembic_heads": _heads(settings.database_url),
            },
            "objects": {"index": "objects.json", "count": len(entries), "bytes": sum(e.size for e in entries)},
            "recordings": recordings,
            "keys": {**{name: f"keys/{path.name}" for name, path in kept.items()}, "key_id": ctx.key_id},
            "source": {
                "storage_backend": settings.storage_backend,
                "bucket": settings.s3_bucket if settings.storage_backend == "s3" else None,
            },
            "problems": problems,
        }
    finally:
        ctx.close()
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")
    if problems:
        raise BackupError("backup written, but objects in the store are damaged: " + "; ".join(problems[:10]))
    return manifest


def _record_damage(ctx: ServerContext, keys: list[str]) -> None:
    """A recording whose stored copy the backup found damaged is marked so at once, with an incident."""
    if not keys:
        return
    from evidence_server.custody.damage import mark_damaged

    with ctx.sessionmaker() as session:
        ids = list(session.scalars(select(Recording.id).where(Recording.storage_key.in_(keys))))
    for rec_id in ids:
        mark_damaged(ctx, rec_id, "failed", "backup", {"why": "bytes read for the backup are not the fingerprint"})


def read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((src / "manifest.json").read_text("utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{src} is not a finished Custodia backup (no manifest.json)") from exc
    if manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def restore_backup(settings: Settings, src: Path, *, replace_key: bool = False) -> dict[str, Any]:
    """Restore into this configuration's (empty) database, its store and its key file."""
    manifest = read_manifest(src)
    assert settings.signing_key_file is not None and settings.staging_dir is not None
    restoring = [(src / manifest["keys"]["signing_key"], settings.signing_key_file)]
    if manifest["keys"].get("sm2_key") and settings.sm2_key_file is not None:
        restoring.append((src / manifest["keys"]["sm2_key"], settings.sm2_key_file))
    for key_src, key_dest in restoring:
        if key_dest.exists() and key_dest.read_bytes() != key_src.read_bytes() and not replace_key:
            raise BackupError(f"{key_dest} holds another key: move it away (or pass --replace-key)")
    database.restore(settings.database_url, src / manifest["database"]["file"])
    for key_src, key_dest in restoring:
        key_dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(key_src, key_dest)
        os.chmod(key_dest, 0o600)
    ctx = ServerContext(settings)
    try:
        restored = objects.restore(
            ctx.store,
            objects.load_index(src / manifest["objects"]["index"]),
            src / "objects",
            settings.staging_dir / "restore",
        )
    finally:
        ctx.close()
    return {"objects": restored, "database": manifest["database"]["kind"], "key_id": manifest["keys"]["key_id"]}


@dataclass
class RestoreCheck:
    audit_ok: bool
    audit_entries: int
    audit_checkpoints: int
    recordings: int
    fixity_ok: int
    fixity_bad: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit_ok and not self.fixity_bad and self.fixity_ok == self.recordings


def check_restored(settings: Settings) -> RestoreCheck:
    """The audit log verifies against its signed checkpoints and every recording passes fixity."""
    from evidence_server.audit.fullcheck import verify_log
    from evidence_server.fixity.service import sweep

    ctx = ServerContext(settings)
    try:
        with ctx.sessionmaker() as session:
            report = verify_log(session, ctx.note_keys)
            total = session.scalar(select(func.count()).select_from(Recording)) or 0
        swept = sweep(ctx, files=max(total, 1), bytes_per_second=0, orphans=False)
    finally:
        ctx.close()
    return RestoreCheck(
        audit_ok=report.ok,
        audit_entries=report.entries,
        audit_checkpoints=report.checkpoints,
        recordings=total,
        fixity_ok=len(swept.checked) - len(swept.failed) - len(swept.missing),
        fixity_bad=swept.failed + swept.missing,
        problems=list(report.problems),
    )
