"""The scheduled jobs find their work without reading every recording (issue 18).

Four jobs look for work on a schedule, and at a province's size each read the whole recordings table to
find little or none: the fixity sweep (hourly) sorted every recording by when it was last checked; the
SM3 backfill and the block-map backfill (every 10 minutes) and the media-profile backfill (every 15)
walked every recording to learn that none was left. At 1M recordings that was 0.3, 0.2, 0.5 and 0.2 s a
run (growing with the table), and each run pushed the whole table through the database's cache.

Each gets a partial index over what it looks for; those of the backfills hold nothing once they are
done. Copies no longer sound (failed, missing, disposed) are left out: retention disposes of recordings
year after year, and they would otherwise stand first in the sweep's order forever.
``recordings.models.fixity_sound`` writes the same states into the jobs' statements.

PostgreSQL only, built ``CONCURRENTLY`` (docks keep writing); an embedded site's tables are small.

Revision ID: 0027_job_indexes
Revises: 0026_sort_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0027_job_indexes"
down_revision = "0026_sort_indexes"
branch_labels = None
depends_on = None

SOUND = "fixity_state NOT IN ('disposed', 'failed', 'missing')"  # recordings.models.FIXITY_SOUND_SQL, frozen
INDEXES = {
    "ix_recordings_fixity_due": f"(fixity_checked_at ASC NULLS FIRST, id) WHERE {SOUND}",
    "ix_recordings_sm3_missing": f"(id) WHERE sm3 IS NULL AND {SOUND}",
    "ix_recordings_unmapped": f"(id) WHERE block_map_root IS NULL AND {SOUND}",
    "ix_recordings_unprofiled": "(id) WHERE media_profile IS NULL AND probe_state = 'done' AND probe IS NOT NULL",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # an invalid one left by a stopped build
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON recordings {definition}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
