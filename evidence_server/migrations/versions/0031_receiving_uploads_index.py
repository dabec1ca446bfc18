"""A station's unfinished uploads from an index of those alone (issue 18).

Each upload's creation counts the station's unfinished uploads (the limit on uploads at once), and the
expiry sweep lists every unfinished upload. Both read every upload the station, or everyone, had ever
made: 148 and 95 ms at 2M uploads (at the 10M a province reaches, five times that by a linear estimate,
not measured). Unfinished uploads are a handful at any time: a partial index of them answers in under a
millisecond.
``uploads.models.receiving`` writes the state into the statements, so a prepared one reads it too.

PostgreSQL only, built ``CONCURRENTLY``; an embedded site's uploads are few.

Revision ID: 0031_receiving_uploads_index
Revises: 0030_audit_search_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0031_receiving_uploads_index"
down_revision = "0030_audit_search_indexes"
branch_labels = None
depends_on = None

NAME = "ix_uploads_receiving"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")  # an invalid one left by a stopped build
        op.execute(f"CREATE INDEX CONCURRENTLY {NAME} ON uploads (station_id) WHERE state = 'receiving'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
