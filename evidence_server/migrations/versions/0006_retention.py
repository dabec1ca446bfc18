"""retention: per-recording retention states, legal holds, case kinds, policy versions, retention changes
and disposal requests with their approvals, disposal certificates

Revision ID: 0006_retention
Revises: 0002_cases
Create Date: 2026-11-24 09:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import evidence_server.db


revision = '0006_retention'
down_revision = '0002_cases'
branch_labels = None
depends_on = None

UTC = evidence_server.db.UTCDateTime(timezone=True)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}'))


def _fk(table: str, column: str, other: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{other}.id'], name=op.f(f'fk_{table}_{column}_{other}'))


def upgrade() -> None:
    op.create_table('retention_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('current', sa.JSON(), nullable=False),
    sa.Column('proposed', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', UTC, nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', UTC, nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.String(length=1000), nullable=True),
    _fk('retention_changes', 'recording_id', 'recordings'),
    _fk('retention_changes', 'case_id', 'cases'),
    _fk('retention_changes', 'requested_by_id', 'users'),
    _fk('retention_changes', 'decided_by_id', 'users'),
    _pk('retention_changes'),
    )
    with op.batch_alter_table('retention_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_changes_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_changes_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_changes_status'), ['status'], unique=False)

    op.create_table('retention_change_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', UTC, nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    _fk('retention_change_approvals', 'change_id', 'retention_changes'),
    _fk('retention_change_approvals', 'user_id', 'users'),
    _pk('retention_change_approvals'),
    sa.UniqueConstraint('change_id', 'user_id', name=op.f('uq_retention_change_approvals_change_id')),
    )
    with op.batch_alter_table('retention_change_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_change_approvals_change_id'), ['change_id'], unique=False)

    op.create_table('retention_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('change_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    _fk('retention_policies', 'created_by_id', 'users'),
    _fk('retention_policies', 'change_id', 'retention_changes'),
    _pk('retention_policies'),
    )

    op.create_table('retention_states',
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('retain_until', UTC, nullable=True),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('extended_until', UTC, nullable=True),
    sa.Column('extended_for_good', sa.Boolean(), nullable=False),
    sa.Column('lock_until', UTC, nullable=True),
    sa.Column('storage_hold', sa.Boolean(), nullable=False),
    sa.Column('held', sa.Boolean(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('computed_at', UTC, nullable=False),
    sa.Column('disposed_at', UTC, nullable=True),
    _fk('retention_states', 'recording_id', 'recordings'),
    sa.PrimaryKeyConstraint('recording_id', name=op.f('pk_retention_states')),
    )
    with op.batch_alter_table('retention_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_states_retain_until'), ['retain_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_states_computed_at'), ['computed_at'], unique=False)

    op.create_table('retention_case_kinds',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('set_at', UTC, nullable=False),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    _fk('retention_case_kinds', 'case_id', 'cases'),
    _fk('retention_case_kinds', 'set_by_id', 'users'),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_retention_case_kinds')),
    )

    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('placed_at', UTC, nullable=False),
    sa.Column('placed_by_id', sa.Integer(), nullable=False),
    sa.Column('lifted_at', UTC, nullable=True),
    sa.Column('lifted_by_id', sa.Integer(), nullable=True),
    sa.Column('lift_reason', sa.String(length=1000), nullable=True),
    _fk('legal_holds', 'unit_id', 'units'),
    _fk('legal_holds', 'placed_by_id', 'users'),
    _fk('legal_holds', 'lifted_by_id', 'users'),
    _pk('legal_holds'),
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_target'), ['target'], unique=False)
        batch_op.create_index(batch_op.f('ix_legal_holds_unit_id'), ['unit_id'], unique=False)

    op.create_table('disposal_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', UTC, nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', UTC, nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.String(length=1000), nullable=True),
    _fk('disposal_requests', 'requested_by_id', 'users'),
    _fk('disposal_requests', 'decided_by_id', 'users'),
    _pk('disposal_requests'),
    )
    with op.batch_alter_table('disposal_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disposal_requests_status'), ['status'], unique=False)

    op.create_table('disposal_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    _fk('disposal_items', 'request_id', 'disposal_requests'),
    _fk('disposal_items', 'recording_id', 'recordings'),
    _pk('disposal_items'),
    sa.UniqueConstraint('request_id', 'recording_id', name=op.f('uq_disposal_items_request_id')),
    )
    with op.batch_alter_table('disposal_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disposal_items_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_disposal_items_recording_id'), ['recording_id'], unique=False)

    op.create_table('disposal_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', UTC, nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    _fk('disposal_approvals', 'request_id', 'disposal_requests'),
    _fk('disposal_approvals', 'user_id', 'users'),
    _pk('disposal_approvals'),
    sa.UniqueConstraint('request_id', 'user_id', name=op.f('uq_disposal_approvals_request_id')),
    )
    with op.batch_alter_table('disposal_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disposal_approvals_request_id'), ['request_id'], unique=False)

    op.create_table('disposal_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', UTC, nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    _fk('disposal_certificates', 'recording_id', 'recordings'),
    _fk('disposal_certificates', 'request_id', 'disposal_requests'),
    _pk('disposal_certificates'),
    sa.UniqueConstraint('number', name=op.f('uq_disposal_certificates_number')),
    sa.UniqueConstraint('recording_id', name=op.f('uq_disposal_certificates_recording_id')),
    )
    with op.batch_alter_table('disposal_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disposal_certificates_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('disposal_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disposal_certificates_request_id'))
    op.drop_table('disposal_certificates')
    with op.batch_alter_table('disposal_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disposal_approvals_request_id'))
    op.drop_table('disposal_approvals')
    with op.batch_alter_table('disposal_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disposal_items_recording_id'))
        batch_op.drop_index(batch_op.f('ix_disposal_items_request_id'))
    op.drop_table('disposal_items')
    with op.batch_alter_table('disposal_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disposal_requests_status'))
    op.drop_table('disposal_requests')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_unit_id'))
        batch_op.drop_index(batch_op.f('ix_legal_holds_target'))
    op.drop_table('legal_holds')
    op.drop_table('retention_case_kinds')
    with op.batch_alter_table('retention_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_states_computed_at'))
        batch_op.drop_index(batch_op.f('ix_retention_states_retain_until'))
    op.drop_table('retention_states')
    op.drop_table('retention_policies')
    with op.batch_alter_table('retention_change_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_change_approvals_change_id'))
    op.drop_table('retention_change_approvals')
    with op.batch_alter_table('retention_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_changes_status'))
        batch_op.drop_index(batch_op.f('ix_retention_changes_case_id'))
        batch_op.drop_index(batch_op.f('ix_retention_changes_recording_id'))
    op.drop_table('retention_changes')
