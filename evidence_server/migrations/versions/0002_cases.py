"""cases: cases, their links to recordings and shares, derived media, the transfer's task

Revision ID: 0002_cases
Revises: 0001
Create Date: 2026-11-22 10:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import evidence_server.db


revision = '0002_cases'
down_revision = '0001'
branch_labels = None
depends_on = None

TRANSFER_COLUMNS = ('task_recorded_by_id', 'task_recorded_at', 'case_id', 'enforcement_matter')


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('enforcement_matter', sa.String(length=500), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('officers', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('created_via', sa.String(length=16), nullable=False),
    sa.Column('created_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_cases_created_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_cases_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('number', name=op.f('uq_cases_number'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_unit_id'), ['unit_id'], unique=False)

    op.create_table('case_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('shared_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('shared_by_id', sa.Integer(), nullable=False),
    sa.Column('revoked_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_shares_case_id_cases')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_case_shares_revoked_by_id_users')),
    sa.ForeignKeyConstraint(['shared_by_id'], ['users.id'], name=op.f('fk_case_shares_shared_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_case_shares_unit_id_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_case_shares_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_shares'))
    )
    with op.batch_alter_table('case_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_shares_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_shares_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_shares_user_id'), ['user_id'], unique=False)

    op.create_table('case_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('checkout_entry_id', sa.Integer(), nullable=True),
    sa.Column('linked_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('linked_by_id', sa.Integer(), nullable=True),
    sa.Column('unlinked_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unlinked_by_id', sa.Integer(), nullable=True),
    sa.Column('unlink_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_links_case_id_cases')),
    sa.ForeignKeyConstraint(['linked_by_id'], ['users.id'], name=op.f('fk_case_links_linked_by_id_users')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_case_links_recording_id_recordings')),
    sa.ForeignKeyConstraint(['unlinked_by_id'], ['users.id'], name=op.f('fk_case_links_unlinked_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_links'))
    )
    with op.batch_alter_table('case_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_links_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_links_recording_id'), ['recording_id'], unique=False)
        # one active link per (case, recording); unlinked rows stay as the history
        batch_op.create_index('uq_case_links_active', ['case_id', 'recording_id'], unique=True,
                              sqlite_where=sa.text('unlinked_at IS NULL'),
                              postgresql_where=sa.text('unlinked_at IS NULL'))

    op.create_table('derived_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source_blake3', sa.String(length=71), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=True),
    sa.Column('blake3', sa.String(length=71), nullable=True),
    sa.Column('sha256', sa.String(length=71), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('media_type', sa.String(length=64), nullable=True),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('made_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_derived_media_recording_id_recordings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_derived_media')),
    sa.UniqueConstraint('recording_id', 'kind', name=op.f('uq_derived_media_recording_id'))
    )
    with op.batch_alter_table('derived_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_derived_media_recording_id'), ['recording_id'], unique=False)

    # plain columns without foreign keys: on SQLite these are ALTER TABLE ADD COLUMN, no table rebuild
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enforcement_matter', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('case_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('task_recorded_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('task_recorded_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_transfers_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_case_id'))
    if op.get_bind().dialect.name == 'sqlite':
        # native DROP COLUMN (SQLite >= 3.35): a batch rebuild would drop and re-create transfers, which
        # recordings and transfer_files reference, and fail on a database with rows
        for column in TRANSFER_COLUMNS:
            op.execute(f'ALTER TABLE transfers DROP COLUMN {column}')
    else:
        with op.batch_alter_table('transfers', schema=None) as batch_op:
            for column in TRANSFER_COLUMNS:
                batch_op.drop_column(column)

    with op.batch_alter_table('derived_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_derived_media_recording_id'))
    op.drop_table('derived_media')

    with op.batch_alter_table('case_links', schema=None) as batch_op:
        batch_op.drop_index('uq_case_links_active', sqlite_where=sa.text('unlinked_at IS NULL'),
                            postgresql_where=sa.text('unlinked_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_case_links_recording_id'))
        batch_op.drop_index(batch_op.f('ix_case_links_case_id'))
    op.drop_table('case_links')

    with op.batch_alter_table('case_shares', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_shares_user_id'))
        batch_op.drop_index(batch_op.f('ix_case_shares_unit_id'))
        batch_op.drop_index(batch_op.f('ix_case_shares_case_id'))
    op.drop_table('case_shares')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_unit_id'))
    op.drop_table('cases')
