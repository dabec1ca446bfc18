"""Files marked important (issue 19, item 6): the mark on each recording (by the device or a person, and its
review), and why a disposal run skipped an item.

Revision ID: 0020_important
Revises: 0017_push
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = '0020_important'
down_revision = "0019_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('important', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('important_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('important_how', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('important_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('important_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('important_note', sa.String(length=1000), nullable=True))
        batch_op.add_column(
            sa.Column('important_reviewed_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('important_reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_recordings_important'), ['important'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_recordings_important_by_id_users'), 'users', ['important_by_id'], ['id']
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_recordings_important_reviewed_by_id_users'), 'users', ['important_reviewed_by_id'], ['id']
        )
    with op.batch_alter_table('disposal_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skip_reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('disposal_items', schema=None) as batch_op:
        batch_op.drop_column('skip_reason')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_recordings_important_reviewed_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_recordings_important_by_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_recordings_important'))
        batch_op.drop_column('important_reviewed_by_id')
        batch_op.drop_column('important_reviewed_at')
        batch_op.drop_column('important_note')
        batch_op.drop_column('important_at')
        batch_op.drop_column('important_by_id')
        batch_op.drop_column('important_how')
        batch_op.drop_column('important_source')
        batch_op.drop_column('important')
