"""dock ports: each station port's last state, so that a failed dock shows on the pages (issue 17)

Revision ID: 0013_ui
Revises: 0011_tenancy
Create Date: 2026-11-25 09:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = '0013_ui'
down_revision = '0011_tenancy'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dock_ports',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('station_id', sa.Integer(), sa.ForeignKey('stations.id'), nullable=False),
        sa.Column('port', sa.String(255), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('reason', sa.String(500), nullable=True),
        sa.Column('advice', sa.String(32), nullable=True),
        sa.Column('device_serial', sa.String(64), nullable=True),
        sa.Column('transfer_id', sa.String(36), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=True),
        sa.Column('since', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('station_id', 'port', name='uq_dock_ports_station_port'),
    )
    op.create_index('ix_dock_ports_station_id', 'dock_ports', ['station_id'])
    op.create_index('ix_dock_ports_updated_at', 'dock_ports', ['updated_at'])


def downgrade() -> None:
    op.drop_index('ix_dock_ports_updated_at', table_name='dock_ports')
    op.drop_index('ix_dock_ports_station_id', table_name='dock_ports')
    op.drop_table('dock_ports')
