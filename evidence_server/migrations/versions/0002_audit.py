"""audit: the audit trail as an append-only Merkle log, signed checkpoints, recording fixity

Revision ID: 0002_audit
Revises: 0001
Create Date: 2026-11-22 09:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import evidence_server.db


revision = '0002_audit'
down_revision = '0001'
branch_labels = None
depends_on = None

# The audit log is append-only (R10): the database itself refuses UPDATE, DELETE and TRUNCATE of
# audit_events and audit_checkpoints, and refuses to move the log head backwards. NB: on SQLite a
# later batch_alter_table that recreates one of these tables drops its triggers; such a migration
# must create them again (_create_guards).
APPEND_ONLY = "the audit log is append-only"

PG_GUARDS = [
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: {APPEND_ONLY}', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$""",
    f"""CREATE FUNCTION audit_log_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.size < OLD.size OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION '% on audit_log_head refused: {APPEND_ONLY}', TG_OP USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$""",
    *[stmt for table in ("audit_events", "audit_checkpoints") for stmt in (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")],
    "CREATE TRIGGER audit_log_head_forward BEFORE UPDATE OR DELETE ON audit_log_head "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_head_forward()",
    "CREATE TRIGGER audit_log_head_no_truncate BEFORE TRUNCATE ON audit_log_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
PG_DROP = [
    *[f"DROP TRIGGER IF EXISTS {t}_{kind} ON {t}" for t in ("audit_events", "audit_checkpoints")
      for kind in ("append_only", "no_truncate")],
    "DROP TRIGGER IF EXISTS audit_log_head_forward ON audit_log_head",
    "DROP TRIGGER IF EXISTS audit_log_head_no_truncate ON audit_log_head",
    "DROP FUNCTION IF EXISTS audit_log_append_only()",
    "DROP FUNCTION IF EXISTS audit_log_head_forward()",
]
SQLITE_GUARDS = {
    **{f"{t}_no_{op_}": f"BEFORE {op_.upper()} ON {t} BEGIN SELECT RAISE(ABORT, '{op_.upper()} on {t} refused: "
       f"{APPEND_ONLY}'); END" for t in ("audit_events", "audit_checkpoints") for op_ in ("update", "delete")},
    "audit_log_head_forward": "BEFORE UPDATE ON audit_log_head WHEN NEW.size < OLD.size OR NEW.id <> OLD.id "
                              f"BEGIN SELECT RAISE(ABORT, 'audit_log_head may only grow: {APPEND_ONLY}'); END",
    "audit_log_head_no_delete": "BEFORE DELETE ON audit_log_head "
                                f"BEGIN SELECT RAISE(ABORT, 'DELETE on audit_log_head refused: {APPEND_ONLY}'); END",
}


def _create_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_GUARDS:
            op.execute(stmt)
    elif op.get_bind().dialect.name == "sqlite":
        for name, body in SQLITE_GUARDS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def _drop_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_DROP:
            op.execute(stmt)
    elif op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _backfill_entries() -> int:
    """Give the entries written before this migration their place in the log, in id order."""
    from custodia_wire.auditlog import entry_leaf_hash, entry_time

    t = sa.table("audit_events", sa.column("id", sa.Integer()), sa.column("seq", sa.BigInteger()),
                 sa.column("leaf_hash", sa.String()), sa.column("at", evidence_server.db.UTCDateTime()),
                 *[sa.column(c, sa.String()) for c in ("actor_type", "actor_name", "action", "object_type",
                                                        "object_id", "client_addr")],
                 sa.column("actor_id", sa.Integer()), sa.column("details", sa.JSON()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(t).order_by(t.c.id)).all()
    for seq, r in enumerate(rows):
        entry = {"seq": seq, "at": entry_time(r.at),
                 "actor": {"type": r.actor_type, "id": r.actor_id, "name": r.actor_name},
                 "action": r.action, "object": {"type": r.object_type, "id": r.object_id},
                 "client_addr": r.client_addr, "details": r.details}
        conn.execute(t.update().where(t.c.id == r.id).values(seq=seq, leaf_hash=entry_leaf_hash(entry).hex()))
    return len(rows)


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('leaf_hash', sa.String(length=64), nullable=True))
    size = _backfill_entries()
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('leaf_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_seq'), ['seq'])

    op.create_table('audit_log_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log_head'))
    )
    op.execute(sa.text("INSERT INTO audit_log_head (id, size) VALUES (1, :size)").bindparams(size=size))

    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=200), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', evidence_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('frontier', sa.Text(), nullable=False),
    sa.Column('tsa_url', sa.String(length=500), nullable=True),
    sa.Column('tsa_token', sa.LargeBinary(), nullable=True),
    sa.Column('tsa_time', evidence_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
    sa.UniqueConstraint('tree_size', name=op.f('uq_audit_checkpoints_tree_size'))
    )
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_checkpoints_issued_at'), ['issued_at'], unique=False)

    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fixity_state', sa.String(length=16), server_default='unchecked',
                                      nullable=False))
        batch_op.add_column(sa.Column('fixity_checked_at', evidence_server.db.UTCDateTime(timezone=True),
                                      nullable=True))

    _create_guards()


def downgrade() -> None:
    _drop_guards()
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_column('fixity_checked_at')
        batch_op.drop_column('fixity_state')

    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_checkpoints_issued_at'))
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_log_head')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_seq'), type_='unique')
        batch_op.drop_column('leaf_hash')
        batch_op.drop_column('seq')
