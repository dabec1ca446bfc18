"""compliance: violation flags for legal-affairs review, their history, and the scans

Revision ID: 0005_compliance
Revises: 0002_ledger, 0002_cases
Create Date: 2026-11-24 09:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import evidence_server.db


revision = '0005_compliance'
down_revision = ('0002_ledger', '0002_cases')
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compliance_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('device_serial', sa.String(length=64), nullable=True),
    sa.Column('officer_no', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('checkout_entry_id', sa.Integer(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('evidence_digest', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('first_seen_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cleared_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_compliance_flags_assignee_id_users')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_compliance_flags_reviewed_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_compliance_flags_unit_id_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_compliance_flags_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_flags')),
    sa.UniqueConstraint('key', name=op.f('uq_compliance_flags_key'))
    )
    with op.batch_alter_table('compliance_flags', schema=None) as batch_op:
        batch_op.create_index('ix_compliance_flags_unit_at', ['unit_id', 'at'], unique=False)
        batch_op.create_index('ix_compliance_flags_kind_at', ['kind', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_flags_device_serial'), ['device_serial'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_flags_officer_no'), ['officer_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_flags_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_flags_checkout_entry_id'), ['checkout_entry_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_flags_cleared_at'), ['cleared_at'], unique=False)

    op.create_table('compliance_flag_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=32), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_compliance_flag_events_actor_id_users')),
    sa.ForeignKeyConstraint(['flag_id'], ['compliance_flags.id'],
                            name=op.f('fk_compliance_flag_events_flag_id_compliance_flags'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_flag_events'))
    )
    with op.batch_alter_table('compliance_flag_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_flag_events_flag_id'), ['flag_id'], unique=False)

    op.create_table('compliance_scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('started_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('as_of', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_scans'))
    )
    with op.batch_alter_table('compliance_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_scans_started_at'), ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('compliance_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_scans_started_at'))
    op.drop_table('compliance_scans')
    with op.batch_alter_table('compliance_flag_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_flag_events_flag_id'))
    op.drop_table('compliance_flag_events')
    with op.batch_alter_table('compliance_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_flags_cleared_at'))
        batch_op.drop_index(batch_op.f('ix_compliance_flags_checkout_entry_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_flags_user_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_flags_officer_no'))
        batch_op.drop_index(batch_op.f('ix_compliance_flags_device_serial'))
        batch_op.drop_index('ix_compliance_flags_kind_at')
        batch_op.drop_index('ix_compliance_flags_unit_at')
    op.drop_table('compliance_flags')
