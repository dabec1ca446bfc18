"""A site whose database user may not create extensions still upgrades (migration 0024): pg_trgm is left
out with a warning, the schema reaches the head, and name searches answer, only without their index."""

from __future__ import annotations

import logging
import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from evidence_server.dbadmin import alembic_config, upgrade
from tests.support.databases import PG_HOST, PG_PORT, PG_USER, PostgresTemplates, _admin_conn

pytestmark = pytest.mark.postgres


def test_an_upgrade_without_the_right_to_create_extensions_goes_on_without_the_trigram_indexes(
    postgres_templates: PostgresTemplates, caplog: pytest.LogCaptureFixture
) -> None:
    assert postgres_templates.available()
    tag = uuid.uuid4().hex[:8]
    role, name = f"custodia_limited_{tag}", f"custodia_limited_{tag}"
    with _admin_conn() as admin:  # type: ignore[no-untyped-call]
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')  # no extensions for this user
    try:
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=name, autocommit=True) as conn:
            conn.execute(f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"')  # tables, yes
        url = f"postgresql+psycopg://{role}@{PG_HOST}:{PG_PORT}/{name}"
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        with caplog.at_level(logging.WARNING):
            upgrade(url)
        assert any("pg_trgm could not be created" in r.getMessage() for r in caplog.records)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head  # every migration ran
                indexes = set(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'recordings'")))
                assert "ix_recordings_started" in indexes
                assert not {"ix_recordings_name_trgm", "ix_recordings_officer_name_trgm"} & indexes
                # the search such an index would serve still answers
                found = conn.scalar(text("SELECT count(*) FROM recordings WHERE lower(original_name) LIKE '%x%'"))
                assert found == 0
        finally:
            engine.dispose()
    finally:
        with _admin_conn() as admin:  # type: ignore[no-untyped-call]
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
