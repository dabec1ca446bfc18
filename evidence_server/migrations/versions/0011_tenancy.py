"""tenancy: station names unique within a unit, and the tokens that stopped working with the reason (issue 15)

A station's name was unique across units, so a device administrator of another unit naming it was
handed the station and a fresh enrolment code. Names are now unique per unit; a station's identity
is its enrolment. ``ended_station_tokens`` remembers why a token stopped (re-enrolled elsewhere,
rotated), so the station presenting it is told.

Revision ID: 0011_tenancy
Revises: 0010_abuse
Create Date: 2026-11-23 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = '0011_tenancy'
down_revision = '0010_abuse'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_stations_name', type_='unique')
        batch_op.create_unique_constraint('uq_stations_unit_id_name', ['unit_id', 'name'])
    op.create_table(
        'ended_station_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('station_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('ended_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['station_id'], ['stations.id'], name=op.f('fk_ended_station_tokens_station_id_stations')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ended_station_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_ended_station_tokens_token_hash')),
    )
    with op.batch_alter_table('ended_station_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ended_station_tokens_station_id'), ['station_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ended_station_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ended_station_tokens_station_id'))
    op.drop_table('ended_station_tokens')
    # names shared by stations of different units get their id appended, so the old rule can hold again
    stations = sa.table('stations', sa.column('id', sa.Integer), sa.column('name', sa.String))
    conn = op.get_bind()
    seen: set[str] = set()
    for station_id, name in conn.execute(sa.select(stations.c.id, stations.c.name).order_by(stations.c.id)).all():
        if name in seen:
            conn.execute(
                stations.update().where(stations.c.id == station_id).values(name=f'{name[:88]}-{station_id}')
            )
        seen.add(name)
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_stations_unit_id_name', type_='unique')
        batch_op.create_unique_constraint('uq_stations_name', ['name'])
