"""The compliance dashboard's share of checkouts with footage flags, read from the index alone (issue 18):
``ix_ledger_entries_kind_occurred`` (kind, occurred_at) carries ``id`` beside ``unit_id``. The count of a
year's flagged checkouts joins them to the flags by id, which the index did not hold: at 10M recordings
(a year of 1M checkouts) that query read every ledger row of the year from the table: 307 ms under EXPLAIN
ANALYZE, of a dashboard of 510 ms. From the index it is 183 ms, and the dashboard 405 ms.

PostgreSQL only (SQLite has no INCLUDE). The new index is built ``CONCURRENTLY`` under another name
(the ledger keeps taking entries), the old one dropped the same way, and the new one takes its name.
An upgrade stopped half-way can run again: a half-built index is dropped and built anew.

Revision ID: 0025_checkouts_index
Revises: 0024_name_search_index
"""

from __future__ import annotations

from alembic import op

revision = "0025_checkouts_index"
down_revision = "0024_name_search_index"
branch_labels = None
depends_on = None

INDEX = "ix_ledger_entries_kind_occurred"
NEW = INDEX + "_ids"


def _replace(include: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW}")  # an invalid one left by a stopped build
        op.execute(f"CREATE INDEX CONCURRENTLY {NEW} ON ledger_entries (kind, occurred_at) INCLUDE ({include})")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.execute(f"ALTER INDEX {NEW} RENAME TO {INDEX}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace("unit_id, id")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace("unit_id")
