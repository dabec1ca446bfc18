"""Migrations go up, down and up again; settings refuse unsafe production configuration."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from evidence_server.config import Settings
from evidence_server.dbadmin import downgrade, upgrade
from evidence_server.models import Base


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    # the fixture's database is already at head
    engine = create_engine(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_models_and_migrations_agree(sqlite_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models changed without a migration: {diff}"


def test_timestamps_must_be_aware(tmp_path) -> None:
    from datetime import datetime

    from evidence_server.db import UTCDateTime

    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "PostgreSQL"),
        (
            {
                "database_url": "postgresql+psycopg://x@db/c",
                "storage_backend": "s3",
                "s3_secret_access_key": "changeme",
            },
            "placeholder",
        ),
    ],
)
def test_production_refuses_unsafe_settings(tmp_path, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(environment="production", data_dir=tmp_path, **overrides)


def test_development_defaults_are_embedded(tmp_path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'custodia.sqlite3'}"
    assert s.storage_backend == "local" and s.task_mode == "inprocess"
