"""security: login lockout counters on users, station token rotation

Revision ID: 0003_security
Revises: 0001
Create Date: 2026-11-23 09:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import evidence_server.db


revision = '0003_security'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', evidence_server.db.UTCDateTime(timezone=True),
                                      nullable=True))

    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_token_expires_at', evidence_server.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('token_rotated_at', evidence_server.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_stations_previous_token_hash'), ['previous_token_hash'])


def downgrade() -> None:
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_stations_previous_token_hash'), type_='unique')
        batch_op.drop_column('token_rotated_at')
        batch_op.drop_column('previous_token_expires_at')
        batch_op.drop_column('previous_token_hash')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
