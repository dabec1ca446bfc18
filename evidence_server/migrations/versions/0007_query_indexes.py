"""query indexes: the compliance dashboard's aggregates (issue 10, P5)

Checkouts by kind and time with their unit (the units' compliance rates count a year of checkouts
from the index alone), and the flags that count (not cleared) by time, covering the columns the
dashboard groups by. Also merges the heads of the feature branches.

Revision ID: 0007_query_indexes
Revises: 0002_audit, 0003_security, 0004_fleet, 0005_compliance, 0006_retention
Create Date: 2026-11-22 03:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_query_indexes'
down_revision = ('0002_audit', '0003_security', '0004_fleet', '0005_compliance', '0006_retention')
branch_labels = None
depends_on = None

ACTIVE = 'cleared_at IS NULL'


def upgrade() -> None:
    op.create_index('ix_ledger_entries_kind_occurred', 'ledger_entries', ['kind', 'occurred_at'],
                    postgresql_include=['unit_id'])
    op.create_index('ix_compliance_flags_active_at', 'compliance_flags', ['at'],
                    postgresql_include=['kind', 'state', 'unit_id', 'officer_no', 'checkout_entry_id'],
                    postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index('ix_compliance_flags_active_at', table_name='compliance_flags')
    op.drop_index('ix_ledger_entries_kind_occurred', table_name='ledger_entries')
