"""0002_audit puts entries written before it into the log, and goes down again keeping them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from evidence_server.audit.fullcheck import verify_log
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.dbadmin import downgrade, upgrade
from tests.audit.conftest import append


def test_existing_entries_are_backfilled_in_id_order_and_survive_a_downgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        for i, action in enumerate(("auth.login", "recording.view", "auth.logout")):
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor_type, actor_id, actor_name, action, details) "
                    "VALUES (:at, 'user', 1, 'admin', :action, :details)"
                ),
                {"at": f"2026-11-21 10:00:0{i}.000000", "action": action, "details": f'{{"n": {i}}}'},
            )
    upgrade(url)
    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=url, environment="test"))
    append(ctx, 2)
    with ctx.sessionmaker() as s:
        report = verify_log(s, ctx.signing_key.public_key())
        assert report.ok and report.entries == 5
        rows = s.execute(text("SELECT seq, action FROM audit_events ORDER BY id")).all()
    assert [tuple(r) for r in rows[:3]] == [(0, "auth.login"), (1, "recording.view"), (2, "auth.logout")]
    ctx.close()

    downgrade(url, "0001")
    assert "audit_checkpoints" not in inspect(engine).get_table_names()
    assert {c["name"] for c in inspect(engine).get_columns("audit_events")}.isdisjoint({"seq", "leaf_hash"})
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 5
        conn.execute(text("DELETE FROM audit_events WHERE id = 5"))  # no guard left after the downgrade
    engine.dispose()


def test_0009_adds_the_leaf_copy_and_goes_down_again_with_the_guards_in_place(tmp_path: Path) -> None:
    import pytest
    from sqlalchemy.exc import DBAPIError

    url = f"sqlite:///{tmp_path / 'trust.sqlite3'}"
    upgrade(url)
    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=url, environment="test"))
    append(ctx, 3)
    from evidence_server.audit.log import issue_checkpoint

    with ctx.sessionmaker() as s:
        cp, _ = issue_checkpoint(ctx, s)
        assert cp.leaves is not None and len(cp.leaves) == 3 * 32
    ctx.close()
    engine = create_engine(url)
    downgrade(url, "0007_query_indexes")
    assert "leaves" not in {c["name"] for c in inspect(engine).get_columns("audit_checkpoints")}
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoints"))
    upgrade(url)
    assert "leaves" in {c["name"] for c in inspect(engine).get_columns("audit_checkpoints")}
    engine.dispose()
