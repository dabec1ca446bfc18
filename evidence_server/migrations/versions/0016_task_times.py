"""The enforcement task's own times on a checkout: what short footage is measured against.

Revision ID: 0016_task_times
Revises: 0015_audit_tiles
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = "0016_task_times"
down_revision = "0015_audit_tiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (never a batch copy): the append-only triggers of ledger_entries stay in place
    for name in ("task_starts_at", "task_ends_at"):
        op.add_column("ledger_entries", sa.Column(name, evidence_server.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in ("task_ends_at", "task_starts_at"):
        op.drop_column("ledger_entries", name)
