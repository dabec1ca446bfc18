"""compliance flags a reviewer can act on (issue 21): the enforcement task's own start and end on a
checkout entry, so that footage is judged against the task and not against how long the device was held;
and each recording's media profile, for the per-device edit baselines

Revision ID: 0016_compliance
Revises: 0015_audit_tiles
Create Date: 2026-12-04 20:15:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_compliance'
down_revision = '0015_audit_tiles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild): the ledger's append-only triggers stay as they are
    op.add_column('ledger_entries', sa.Column('task_start_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('ledger_entries', sa.Column('task_end_at', sa.DateTime(timezone=True), nullable=True))
    # what each recorder wrote into a file (media.profile), for the per-device edit baselines; files
    # probed before this revision have none until probed again (the rules then fall back to tags)
    op.add_column('recordings', sa.Column('media_profile', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('recordings', 'media_profile')
    op.drop_column('ledger_entries', 'task_end_at')
    op.drop_column('ledger_entries', 'task_start_at')
