"""Lists of recordings, newest first, without sorting every visible recording (issue 18): an index on
``coalesce(name_started_at, container_started_at) DESC NULLS LAST, id DESC``, the order the recordings
page, the search page and ``GET /api/v1/recordings`` show. At 10M recordings a case handler's first
page sorted their unit's 2.5M recordings (and counted them) on every view: 45 s.

PostgreSQL only, and built ``CONCURRENTLY`` (outside the migration's transaction) so that docks keep
writing while a large table is indexed. SQLite cannot name ``NULLS LAST`` in an index; an embedded
site's lists are small.

Revision ID: 0023_started_index
Revises: 0022_profiled_index
"""
from __future__ import annotations

from alembic import op

revision = '0023_started_index'
down_revision = "0022_profiled_index"
branch_labels = None
depends_on = None

INDEX = "ix_recordings_started"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON recordings "
            "((coalesce(name_started_at, container_started_at)) DESC NULLS LAST, id DESC)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
