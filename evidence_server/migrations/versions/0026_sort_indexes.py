"""Recordings sorted by any column a list offers, at a province's size (issue 18): an index for each order
the recordings page, the search page and the API can ask for (``cases.search.SORTS``) that no index served.

At 10M recordings a case handler who sorted their list by size, file name, duration, time verified, or
any column but the device and the officer in ascending order, waited 17 to 18 s (22 to 27 s with other
work on the machine): their visibility
(their unit's recordings, or those linked to a case shared with them) reads and sorts every recording
unless the order comes from an index. Walking an index in the list's order finds a page after a few
hundred rows.

Columns that cannot be NULL are sorted without a NULLS clause (``search.ordering``), so that one index
serves both directions (read backwards). The nullable ones keep their NULLs last either way, and each
direction needs its own index. The device and the officer in ascending order already had theirs.

PostgreSQL only, built ``CONCURRENTLY`` (docks keep writing); an embedded site's lists are small.

Revision ID: 0026_sort_indexes
Revises: 0025_checkouts_index
"""

from __future__ import annotations

from alembic import op

revision = "0026_sort_indexes"
down_revision = "0025_checkouts_index"
branch_labels = None
depends_on = None

STARTED = "(coalesce(name_started_at, container_started_at))"
INDEXES = {
    "ix_recordings_size_id": "size, id",
    "ix_recordings_original_name_id": "original_name, id",
    "ix_recordings_verified_id": "verified_at, id",
    "ix_recordings_duration_id": "duration_s ASC NULLS LAST, id",
    "ix_recordings_duration_desc": "duration_s DESC NULLS LAST, id DESC",
    "ix_recordings_officer_desc": "officer_no DESC NULLS LAST, id DESC",
    "ix_recordings_started_asc": f"{STARTED} ASC NULLS LAST, id",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # an invalid one left by a stopped build
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON recordings ({columns})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
