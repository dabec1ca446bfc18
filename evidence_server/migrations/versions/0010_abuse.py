"""abuse: repeated anonymous failures counted per window instead of logged one by one (issue 15)

Revision ID: 0010_abuse
Revises: 0009_trust
Create Date: 2026-12-04 16:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evidence_server.db import UTCDateTime

revision = '0010_abuse'
down_revision = '0009_trust'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_tallies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('client_addr', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('window_start', UTCDateTime(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_tallies')),
        sa.UniqueConstraint('action', 'client_addr', 'subject', 'window_start', name=op.f('uq_audit_tallies_action')),
    )
    op.create_index(op.f('ix_audit_tallies_window_start'), 'audit_tallies', ['window_start'])


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_tallies_window_start'), table_name='audit_tallies')
    op.drop_table('audit_tallies')
