"""audit tiles and group commit: the log's interior hashes, 256 to a tile, so that proofs read O(log n)
hashes; and the pending entries that PostgreSQL writers commit without a lock (issue 18)

Tiles are filled by the checkpoint task from the stored leaf hashes; a log upgraded with entries
already in it gets its tiles at its next checkpoint (proofs are computed from the leaves meanwhile).

Revision ID: 0015_audit_tiles
Revises: 0013_ui
Create Date: 2026-12-04 16:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_audit_tiles'
down_revision = '0013_ui'
branch_labels = None
depends_on = None


# Tiles never change once written, like the entries they are made of (see 0002_audit's guards).
PG_GUARDS = [
    "CREATE TRIGGER audit_tiles_append_only BEFORE UPDATE OR DELETE ON audit_tiles "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_tiles_no_truncate BEFORE TRUNCATE ON audit_tiles "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
SQLITE_GUARDS = [
    f"CREATE TRIGGER audit_tiles_no_{op_} BEFORE {op_.upper()} ON audit_tiles "
    f"BEGIN SELECT RAISE(ABORT, '{op_.upper()} on audit_tiles refused: the audit log is append-only'); END"
    for op_ in ("update", "delete")
]


def upgrade() -> None:
    op.create_table(
        'audit_tiles',
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('idx', sa.BigInteger(), nullable=False),
        sa.Column('hashes', sa.LargeBinary(), nullable=False),
        sa.Column('root', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_audit_tiles')),
    )
    for stmt in PG_GUARDS if op.get_bind().dialect.name == 'postgresql' else SQLITE_GUARDS:
        op.execute(stmt)
    op.create_table(
        'audit_pending',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('actor_type', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_name', sa.String(length=200), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('object_type', sa.String(length=32), nullable=True),
        sa.Column('object_id', sa.String(length=64), nullable=True),
        sa.Column('client_addr', sa.String(length=64), nullable=True),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_pending')),
    )


def downgrade() -> None:
    op.drop_table('audit_pending')
    op.drop_table('audit_tiles')
