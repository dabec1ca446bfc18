"""The fixity sweep walks the records in the order of their storage keys (issue 18).

Its orphan check compares the store's listing with the records. It held every record's key in memory
(gigabytes at 10M recordings) and looked up each disposed recording alone, every hour. Now both come in
the order of their keys, byte by byte as S3 lists them, and are walked side by side: on PostgreSQL that
order is the "C" collation's, read from this index, which also holds what the walk needs from each row.
The objects that look orphaned are looked up in it once more.

PostgreSQL only, built ``CONCURRENTLY``; SQLite compares bytes by default, and an embedded site is small.

Revision ID: 0029_storage_key_index
Revises: 0028_officer_sort_index
"""

from __future__ import annotations

from alembic import op

revision = "0029_storage_key_index"
down_revision = "0028_officer_sort_index"
branch_labels = None
depends_on = None

NAME = "ix_recordings_storage_key"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")  # an invalid one left by a stopped build
        op.execute(
            f'CREATE INDEX CONCURRENTLY {NAME} ON recordings (storage_key COLLATE "C", id) INCLUDE (fixity_state)'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
