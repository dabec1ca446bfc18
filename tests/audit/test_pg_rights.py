"""On PostgreSQL the server's own role can append to the audit log but never rewrite it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from evidence_server.audit.dbrights import app_role_grants
from evidence_server.audit.fullcheck import verify_log
from evidence_server.audit.log import issue_checkpoint
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from tests.audit.conftest import append
from tests.support.databases import PostgresTemplates


@pytest.mark.postgres
def test_the_app_role_cannot_update_delete_or_unguard_audit_rows(
    postgres_templates: PostgresTemplates, tmp_path: Path
) -> None:
    owner_url = postgres_templates.fresh()
    role = f"custodia_app_{uuid.uuid4().hex[:8]}"
    owner = create_engine(owner_url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{make_url(owner_url).database}" TO {role}'))
        for stmt in app_role_grants(role):
            conn.execute(text(stmt))
    app_url = make_url(owner_url).set(username=role).render_as_string(hide_password=False)
    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=app_url, environment="test"))
    try:
        append(ctx, 4)  # the app role appends and moves the head...
        with ctx.sessionmaker() as s:
            cp, _ = issue_checkpoint(ctx, s)  # ...and signs checkpoints
        assert cp.tree_size == 4
        refused = {
            "UPDATE audit_events SET details = NULL WHERE seq = 1": "permission denied",
            "DELETE FROM audit_events WHERE seq = 1": "permission denied",
            "TRUNCATE audit_events": "permission denied",
            "DELETE FROM audit_checkpoints": "permission denied",
            "UPDATE audit_log_head SET size = 0": "append-only",
            "ALTER TABLE audit_events DISABLE TRIGGER USER": "must be owner",
            "DROP TRIGGER audit_events_append_only ON audit_events": "must be owner",
        }
        for stmt, why in refused.items():
            with pytest.raises(DBAPIError, match=why), ctx.engine.begin() as conn:
                conn.execute(text(stmt))
        # even the owner is stopped by the triggers unless it switches them off on purpose
        with pytest.raises(DBAPIError, match="append-only"), owner.connect() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE seq = 1"))
        with ctx.sessionmaker() as s:
            assert verify_log(s, ctx.signing_key.public_key()).ok
    finally:
        ctx.close()
        with owner.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        owner.dispose()
