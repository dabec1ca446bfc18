"""Fixtures of the audit tests: a server context on a fresh database, and raw-SQL tampering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from evidence_server.audit.sequencer import sequence
from evidence_server.audit.service import record
from evidence_server.config import Settings
from evidence_server.context import ServerContext


@pytest.fixture
def ctx(tmp_path: Path, database_url: str) -> Iterator[ServerContext]:
    """A server context (database, key, storage) on a fresh migrated SQLite or PostgreSQL database."""
    c = ServerContext(Settings(data_dir=tmp_path / "server", database_url=database_url, environment="test"))
    yield c
    c.close()


def append(ctx: ServerContext, count: int, action: str = "recording.view", **details: Any) -> None:
    with ctx.sessionmaker() as session:
        for i in range(count):
            record(session, action, object_type="recording", object_id=i, details={"n": i, **details})
        session.commit()


TABLES = ("audit_events", "audit_checkpoints", "audit_log_head", "audit_tiles")


def tamper(ctx: ServerContext, *statements: str) -> None:
    """Run raw SQL as the database owner would, with the append-only triggers switched off, on the log as it
    stands (entries committed and still pending placed first, as any read of the log would)."""
    sqlite = ctx.engine.dialect.name == "sqlite"
    if not sqlite:
        sequence(ctx.engine)
    with ctx.engine.begin() as conn:
        if sqlite:
            for name in (
                "audit_events_no_update",
                "audit_events_no_delete",
                "audit_checkpoints_no_update",
                "audit_checkpoints_no_delete",
                "audit_log_head_forward",
                "audit_tiles_no_update",
                "audit_tiles_no_delete",
            ):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        else:
            for table in TABLES:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        for stmt in statements:
            conn.execute(text(stmt))
        if not sqlite:
            for table in TABLES:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
