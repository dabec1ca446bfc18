"""fleet: heartbeat samples of each station, for the fleet page and its alerts

Revision ID: 0004_fleet
Revises: 0001
Create Date: 2026-11-23 09:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import evidence_server.db


revision = '0004_fleet'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('station_heartbeats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('spool_bytes', sa.BigInteger(), nullable=True),
    sa.Column('free_bytes', sa.BigInteger(), nullable=True),
    sa.Column('agent_version', sa.String(length=50), nullable=True),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_station_heartbeats_station_id_stations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_station_heartbeats'))
    )
    with op.batch_alter_table('station_heartbeats', schema=None) as batch_op:
        batch_op.create_index('ix_station_heartbeats_station_at', ['station_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('station_heartbeats', schema=None) as batch_op:
        batch_op.drop_index('ix_station_heartbeats_station_at')
    op.drop_table('station_heartbeats')
