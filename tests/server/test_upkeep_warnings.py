"""The server says at startup when PostgreSQL would not vacuum or analyse what Custodia leans on: the audit
queue takes a row in and out per audited read, and the dashboard's plans rest on fresh statistics. This
machine kind's PostgreSQL runs with autovacuum off; the 10M benchmark found the flags' statistics still
those of an empty table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from evidence_server.app import create_app
from evidence_server.config import Settings
from evidence_server.db import make_engine
from evidence_server.dbadmin import maintenance_warnings


def test_the_server_says_at_startup_when_postgresql_would_not_vacuum(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    try:
        if engine.dialect.name != "postgresql":
            assert maintenance_warnings(engine) == []  # SQLite keeps no such upkeep
            return
        with engine.connect() as conn:
            server_off = conn.scalar(text("SHOW autovacuum")) == "off"
        found = maintenance_warnings(engine)
        assert any("autovacuum = off" in w for w in found) == server_off  # said exactly when it is so
        with engine.begin() as conn:  # one table left out by hand
            conn.execute(text("ALTER TABLE audit_pending SET (autovacuum_enabled = false)"))
        settings = Settings(data_dir=tmp_path / "server", database_url=database_url, environment="test")
        with caplog.at_level(logging.WARNING, logger="evidence_server.app"), TestClient(create_app(settings)):
            pass
        logged = [r.getMessage() for r in caplog.records if r.name == "evidence_server.app"]
        assert any("autovacuum is disabled for audit_pending" in m for m in logged), logged
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_pending RESET (autovacuum_enabled)"))
        assert maintenance_warnings(engine) == found  # and no longer once it is undone
    finally:
        engine.dispose()
