"""trust: each checkpoint keeps a copy of the leaf hashes it added, so a rewrite is named exactly

A row rewritten together with its stored leaf hash still matches itself; only the signed root says
that something changed, somewhere since the last good checkpoint. The leaves a checkpoint added,
kept beside it, are authenticated by that root (they must hash up to it), so the full check can name
the very entry whose content differs from what was signed. Checkpoints made before this have none:
for them the check narrows the damage to the smallest signed subtree that differs.

Revision ID: 0009_trust
Revises: 0008_custody
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_trust"
down_revision = '0008_custody'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild): the append-only triggers of audit_checkpoints stay.
    op.add_column("audit_checkpoints", sa.Column("leaves", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite >= 3.35, PostgreSQL): no rebuild, the triggers stay.
    op.drop_column("audit_checkpoints", "leaves")
