"""Audit entries keep the time of their request while they wait for their place in the log (issue 18):
``audit_pending.at``, set when the request writes the entry; an entry placed later (its process died,
or a run waited) keeps the time it was recorded, not the time it was placed.

Revision ID: 0021_pending_at
Revises: 0020_important
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = '0021_pending_at'
down_revision = "0020_important"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_pending', schema=None) as batch_op:
        # entries a server of the previous version queued get their placement's time, as they would have
        batch_op.add_column(sa.Column('at', evidence_server.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_pending', schema=None) as batch_op:
        batch_op.drop_column('at')
