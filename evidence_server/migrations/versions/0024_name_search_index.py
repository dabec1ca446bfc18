"""Searching recordings by part of a file name or of an officer's name at a province's size (issue 18):
trigram indexes (PostgreSQL's pg_trgm) on ``lower(original_name)`` and ``lower(officer_name)``, which the
``LIKE '%…%'`` of those filters can use. Without them each such search read every visible recording:
6 to 8 s for a case handler at 10M recordings.

PostgreSQL only, built ``CONCURRENTLY`` (docks keep writing). ``pg_trgm`` ships with PostgreSQL and is a
trusted extension (PostgreSQL 13 and later: a database owner may create it). Where it cannot be created,
the migration says so and goes on without the indexes: the searches still answer, only slower. It ends
with ``ANALYZE recordings`` (a sample, about a second at 10M), so the planner knows the names' statistics.

Revision ID: 0024_name_search_index
Revises: 0023_started_index
"""
from __future__ import annotations

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = '0024_name_search_index'
down_revision = "0023_started_index"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEXES = {"ix_recordings_name_trgm": "original_name", "ix_recordings_officer_name_trgm": "officer_name"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        try:
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DBAPIError as exc:
            log.warning("pg_trgm could not be created (%s): name searches will read every recording", exc.orig)
            return
        for name, column in INDEXES.items():
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON recordings USING gin (lower({column}) gin_trgm_ops)"
            )
        # The planner learns how often a part of a name matches only from the statistics ANALYZE gathers on
        # the indexed expressions, and autovacuum analyses a large table only after a tenth of it changed.
        # Without them it guessed 20,000 matches for any part of a name, walked the newest-first index, and
        # took 5-23 s at 10M recordings to find that a name nobody has matched nothing (after: 0.1-233 ms).
        op.execute("ANALYZE recordings")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
