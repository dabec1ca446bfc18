"""Periodic jobs: in-process when enabled, in Celery beat's schedule otherwise."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from evidence_server.audit.models import AuditCheckpoint
from evidence_server.background.scheduler import Scheduler, beat_schedule
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from tests.audit.conftest import append


def test_scheduler_is_off_in_tests_on_by_default_and_never_with_celery(tmp_path: Path) -> None:
    assert not Settings(data_dir=tmp_path, environment="test").scheduler_enabled
    assert Settings(data_dir=tmp_path, environment="test", scheduler=True).scheduler_enabled
    assert Settings(data_dir=tmp_path).scheduler_enabled
    assert not Settings(data_dir=tmp_path, task_mode="celery").scheduler_enabled


def test_beat_schedule_follows_the_settings(tmp_path: Path) -> None:
    s = Settings(
        data_dir=tmp_path,
        audit_checkpoint_interval_s=600,
        fixity_interval_s=0,
        retention_interval_s=0,
        compliance_scan_interval_s=0,
        upload_sweep_interval_s=0,
        block_map_backfill_interval_s=0,
        sm3_backfill_interval_s=0,
        binding_check_interval_s=0,
    )
    assert beat_schedule(s) == {
        "audit.checkpoint": {"task": "audit.checkpoint", "schedule": 600.0},
        # the counts of repeated anonymous failures are written as each window closes (audit/tally.py)
        "audit.close_tallies": {"task": "audit.close_tallies", "schedule": 300.0},
    }
    assert beat_schedule(Settings(data_dir=tmp_path, retention_interval_s=900))["retention.apply"] == {
        "task": "retention.apply",
        "schedule": 900.0,
    }
    assert beat_schedule(Settings(data_dir=tmp_path))["uploads.expire"] == {
        "task": "uploads.expire",
        "schedule": 3600.0,
    }
    assert "uploads.expire" not in beat_schedule(Settings(data_dir=tmp_path, upload_expiry_hours=0))


def test_the_in_process_scheduler_signs_checkpoints(tmp_path: Path, sqlite_url: str) -> None:
    ctx = ServerContext(
        Settings(
            data_dir=tmp_path,
            database_url=sqlite_url,
            environment="test",
            audit_checkpoint_interval_s=1,
            fixity_interval_s=0,
        )
    )
    append(ctx, 2)
    scheduler = Scheduler(ctx)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with ctx.sessionmaker() as s:
                if s.scalar(select(func.count()).select_from(AuditCheckpoint)):
                    break
            time.sleep(0.1)
    finally:
        scheduler.stop()
    with ctx.sessionmaker() as s:
        assert s.scalar(select(AuditCheckpoint.tree_size)) == 2
    ctx.close()
