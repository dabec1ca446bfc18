"""The auditor's search of the log by actor or action, from an index at any size (issue 18).

The audit page matches an actor or an action by its beginning (``case.`` finds every case action), newest
first. What an auditor looks for is rare: one person's doings, the disposals, a sysadmin's changes. For a
rare one PostgreSQL read the whole log (the plain index on the action cannot serve a prefix in a
collation other than "C"): 494 and 519 ms at 10M entries, growing with the log. These indexes use the
pattern operator class, which serves a prefix in any collation, and carry the sequence number: 1.0 to 1.3
ms at 10M. A common actor or action is still found by walking the log newest first (1.5 to 2 ms).

PostgreSQL only, built ``CONCURRENTLY`` (appends go on); an embedded site's log is small.

Revision ID: 0030_audit_search_indexes
Revises: 0029_storage_key_index
"""

from __future__ import annotations

from alembic import op

revision = "0030_audit_search_indexes"
down_revision = "0029_storage_key_index"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_events_actor_prefix": "(actor_name varchar_pattern_ops, seq)",
    "ix_audit_events_action_prefix": "(action varchar_pattern_ops, seq)",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # an invalid one left by a stopped build
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON audit_events {columns}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
