"""The audit log in the database: gapless appends, signed checkpoints, tampering found and named."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from custodia_cli.main import cli
from custodia_wire import auditlog, merkle
from evidence_server.audit.log import LogTampered, issue_checkpoint, log_size, stored_leaf_hashes, verify_log
from evidence_server.audit.models import AuditEvent
from evidence_server.audit.service import entry_dict, record
from evidence_server.context import ServerContext
from tests.audit.conftest import append, tamper


def seqs(ctx: ServerContext) -> list[int]:
    with ctx.sessionmaker() as s:
        return list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))


def checkpoint(ctx: ServerContext):  # type: ignore[no-untyped-def]
    with ctx.sessionmaker() as s:
        return issue_checkpoint(ctx, s)


def verify(ctx: ServerContext):  # type: ignore[no-untyped-def]
    with ctx.sessionmaker() as s:
        return verify_log(s, ctx.signing_key.public_key())


def test_concurrent_appends_get_gapless_sequence_numbers(ctx: ServerContext) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                append(ctx, 2)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seqs(ctx) == list(range(60))
    with ctx.sessionmaker() as s:
        assert log_size(s) == 60
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert all(a.at <= b.at for a, b in zip(rows, rows[1:], strict=False))
        assert all(auditlog.entry_leaf_hash(entry_dict(r)).hex() == r.leaf_hash for r in rows)


def test_a_rolled_back_transaction_leaves_no_gap(ctx: ServerContext) -> None:
    append(ctx, 2)
    with ctx.sessionmaker() as s:
        record(s, "auth.login_failed", details={"username": "x"})
        s.flush()
        s.rollback()
    append(ctx, 1, action="auth.login")
    assert seqs(ctx) == [0, 1, 2]


def test_entries_hash_the_same_after_a_round_trip_through_the_database(ctx: ServerContext) -> None:
    append(ctx, 1, name="张三", nested={"b": [1, 2.5, None], "a": True}, when="2026-11-21T10:00:00Z")
    with ctx.sessionmaker() as s:
        ev = s.scalar(select(AuditEvent))
        assert ev is not None
        entry = entry_dict(ev)
    assert entry["details"]["name"] == "张三" and entry["at"].endswith("Z") and len(entry["at"]) == 27
    assert merkle.leaf_hash(auditlog.entry_leaf_data(entry)).hex() == ev.leaf_hash


def test_checkpoints_are_signed_idempotent_and_extend_each_other(ctx: ServerContext) -> None:
    append(ctx, 5)
    first, created = checkpoint(ctx)
    assert created and first.tree_size == 5
    again, created = checkpoint(ctx)
    assert not created and again.id == first.id
    append(ctx, 3)
    second, created = checkpoint(ctx)
    assert created and second.tree_size == 8
    cp = auditlog.verify_note(second.note, ctx.signing_key.public_key(), ctx.settings.audit_origin)
    with ctx.sessionmaker() as s:
        leaves = list(stored_leaf_hashes(s, 8))
    assert cp.root_hash == merkle.root(leaves) and cp.root_hash.hex() == second.root_hash
    assert verify(ctx).ok


def test_a_checkpoint_of_the_empty_log_verifies(ctx: ServerContext) -> None:
    empty, created = checkpoint(ctx)
    assert created and empty.tree_size == 0
    append(ctx, 2)
    checkpoint(ctx)
    report = verify(ctx)
    assert report.ok, report


def test_the_database_refuses_to_rewrite_the_log(ctx: ServerContext) -> None:
    append(ctx, 3)
    checkpoint(ctx)
    for stmt in (
        "UPDATE audit_events SET details = NULL WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "UPDATE audit_checkpoints SET root_hash = 'x'",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_log_head SET size = 0",
        "DELETE FROM audit_log_head",
    ):
        with pytest.raises(DBAPIError, match="append-only|may only grow"), ctx.engine.begin() as conn:
            conn.execute(text(stmt))
    assert seqs(ctx) == [0, 1, 2] and verify(ctx).ok


@pytest.mark.parametrize(
    "attack, first_bad",
    [
        ("UPDATE audit_events SET details = '{\"n\": 99}' WHERE seq = 4", 4),
        ("UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 6", 6),
        ("DELETE FROM audit_events WHERE seq = 3", 3),
    ],
)
def test_editing_or_deleting_a_row_is_found_and_the_entry_named(
    ctx: ServerContext, attack: str, first_bad: int
) -> None:
    append(ctx, 10)
    checkpoint(ctx)
    tamper(ctx, attack)
    report = verify(ctx)
    assert not report.ok and report.first_bad_seq == first_bad
    assert any(f"entr{'ies' if 'DELETE' in attack else 'y'} {first_bad}" in p for p in report.problems)


@pytest.mark.parametrize(
    "attack",
    [
        "UPDATE audit_events SET details = NULL WHERE seq = 5",
        "DELETE FROM audit_events WHERE seq = 5",
        # flip the first hex digit of the stored tree state (always a change, whatever the hash)
        "UPDATE audit_checkpoints SET frontier = CASE WHEN substr(frontier, 1, 1) = '0' THEN '1' ELSE '0' END"
        " || substr(frontier, 2)",
    ],
)
def test_the_server_refuses_to_sign_entries_rewritten_before_their_checkpoint(ctx: ServerContext, attack: str) -> None:
    append(ctx, 4)
    checkpoint(ctx)
    append(ctx, 3)
    tamper(ctx, attack)
    with pytest.raises(LogTampered):
        checkpoint(ctx)


def test_a_rewrite_of_signed_entries_cannot_be_laundered_into_a_new_checkpoint(ctx: ServerContext) -> None:
    append(ctx, 4)
    checkpoint(ctx)
    with ctx.sessionmaker() as s:
        original = list(stored_leaf_hashes(s, 4))
    tamper(ctx, "DELETE FROM audit_events WHERE seq = 1")
    append(ctx, 3)
    new, created = checkpoint(ctx)  # built on the old checkpoint's tree state, not on the rewritten rows
    with ctx.sessionmaker() as s:
        added = [
            bytes.fromhex(h)
            for h in s.scalars(select(AuditEvent.leaf_hash).where(AuditEvent.seq >= 4).order_by(AuditEvent.seq))
        ]
    assert created and new.root_hash == merkle.root(original + added).hex()
    report = verify(ctx)
    assert not report.ok and report.first_bad_seq == 1


def test_a_rewrite_with_recomputed_leaf_hash_still_breaks_the_checkpoint(ctx: ServerContext) -> None:
    append(ctx, 4)
    checkpoint(ctx)
    append(ctx, 4)
    checkpoint(ctx)
    with ctx.sessionmaker() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.seq == 5))
        assert ev is not None
        forged = {**entry_dict(ev), "details": {"n": 1000}}
    leaf = auditlog.entry_leaf_hash(forged).hex()
    tamper(ctx, f"UPDATE audit_events SET details = '{{\"n\": 1000}}', leaf_hash = '{leaf}' WHERE seq = 5")  # noqa: S608
    report = verify(ctx)
    assert not report.ok
    assert report.first_bad_seq == 4  # the entries since the last checkpoint that still matches
    assert any("checkpoint at size 8" in p and "4..7" in p for p in report.problems)


def test_deleting_the_newest_entries_is_found(ctx: ServerContext) -> None:
    append(ctx, 6)
    checkpoint(ctx)
    tamper(ctx, "DELETE FROM audit_events WHERE seq >= 4", "UPDATE audit_log_head SET size = 4")
    report = verify(ctx)
    assert not report.ok and report.first_bad_seq == 4
    assert any("covers entries 4..5" in p for p in report.problems)


def test_custodia_audit_verify_names_the_first_bad_entry(ctx: ServerContext, monkeypatch) -> None:
    append(ctx, 8)
    checkpoint(ctx)
    env = {
        "CUSTODIA_DATA_DIR": str(ctx.settings.data_dir),
        "CUSTODIA_DATABASE_URL": ctx.settings.database_url,
        "CUSTODIA_ENVIRONMENT": "test",
    }
    from evidence_server.config import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "audit log intact: 8 entries, 1 signed checkpoints match" in ok.output
    tamper(ctx, "UPDATE audit_events SET action = 'recording.nothing' WHERE seq = 2")
    bad = runner.invoke(cli, ["audit", "verify", "--key", ctx.public_key_b64], env=env)
    get_settings.cache_clear()
    assert bad.exit_code == 1
    assert "entry 2 (id 3, recording.nothing) was altered" in bad.output
    assert "first bad entry: 2" in bad.output
