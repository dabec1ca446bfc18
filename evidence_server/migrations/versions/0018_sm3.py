"""SM3 beside SHA-256 and BLAKE3 (issue 19): the recording's SM3, computed by the server on receipt.

Nullable: recordings stored before are given theirs by the backfill (``custody.backfill_sm3``).

Revision ID: 0018_sm3
Revises: 0017_push
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_sm3"
down_revision = "0017_push"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sm3", sa.String(length=68), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("sm3")
