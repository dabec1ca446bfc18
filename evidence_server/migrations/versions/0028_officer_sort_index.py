"""The recordings list sorted by officer, ascending, from one index read (issue 18).

Migration 0026 gave every other order its index. Officer ascending was left on the single-column officer
index: PostgreSQL read it, then sorted each officer's recordings by id, about 10,000 per officer at 10M
recordings, and went on through officers of other units until a page was full. The case handler's list so
sorted took 572 ms at 10M recordings; with the id in the index the order is read as it is: 229 ms.

PostgreSQL only, built ``CONCURRENTLY``, as 0026.

Revision ID: 0028_officer_sort_index
Revises: 0027_job_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0028_officer_sort_index"
down_revision = "0027_job_indexes"
branch_labels = None
depends_on = None

NAME = "ix_recordings_officer_asc"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")  # an invalid one left by a stopped build
        op.execute(f"CREATE INDEX CONCURRENTLY {NAME} ON recordings (officer_no ASC NULLS LAST, id)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
