"""The audit log in the database: gapless appends, signed checkpoints, tampering found and named."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from custodia_cli.main import cli
from custodia_wire import auditlog, merkle
from evidence_server.audit.fullcheck import verify_log
from evidence_server.audit.log import LogTampered, issue_checkpoint, log_size, stored_leaf_hashes
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


def rewrite(ctx: ServerContext, seq: int, details: str) -> None:
    """Rewrite an entry's details *and* its stored leaf hash, as an insider who knows the format would."""
    with ctx.sessionmaker() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.seq == seq))
        assert ev is not None
        forged = {**entry_dict(ev), "details": json.loads(details)}
    leaf = auditlog.entry_leaf_hash(forged).hex()
    tamper(ctx, f"UPDATE audit_events SET details = '{details}', leaf_hash = '{leaf}' WHERE seq = {seq}")  # noqa: S608


def test_a_rewrite_with_recomputed_leaf_hash_is_named_exactly(ctx: ServerContext) -> None:
    append(ctx, 4)
    checkpoint(ctx)
    append(ctx, 4)
    checkpoint(ctx)
    rewrite(ctx, 5, '{"n": 1000}')
    report = verify(ctx)
    assert not report.ok
    assert report.first_bad() == (5, 5)  # the checkpoint's own copy of the leaves it signed names it
    assert any("entry 5 (id 6, recording.view) was rewritten together with its leaf hash" in p for p in report.problems)
    assert any("checkpoint at size 8" in p and "4..7" in p for p in report.problems)


def test_entry_70_rewritten_under_one_checkpoint_of_100_is_named_70_not_0(ctx: ServerContext, monkeypatch) -> None:
    """The finding of issue 14: "first bad entry 0" when entry 70 was altered (the range since the last good
    checkpoint, 0 for the first one, was printed as if it were an entry)."""
    append(ctx, 100)
    checkpoint(ctx)
    rewrite(ctx, 70, '{"n": 7000}')
    out = run_audit_verify(ctx)
    assert out.exit_code == 1
    assert "first bad entry: 70\n" in out.output and "first bad entry: 0" not in out.output


def test_under_a_checkpoint_without_leaf_copy_the_damage_is_narrowed_and_said_to_be_a_range(
    ctx: ServerContext,
) -> None:
    append(ctx, 100)
    checkpoint(ctx)
    tamper(ctx, "UPDATE audit_checkpoints SET leaves = NULL")  # as checkpoints signed before 0009_trust are
    rewrite(ctx, 70, '{"n": 7000}')
    report = verify(ctx)
    assert report.first_bad() == (64, 95)  # the signed subtree of entries 64..95 is the one that differs
    assert "one of 64..95" in report.describe_first_bad() and "cannot say which" in report.describe_first_bad()


def test_an_altered_leaf_copy_is_not_believed(ctx: ServerContext) -> None:
    append(ctx, 8)
    checkpoint(ctx)
    # the insider also rewrites the checkpoint's copy to point at another entry: the copy no longer gives
    # the signed root, so it names nothing, and the check falls back to the signed subtrees
    tamper(
        ctx,
        "UPDATE audit_checkpoints SET leaves = zeroblob(256)"
        if ctx.engine.dialect.name == "sqlite"
        else "UPDATE audit_checkpoints SET leaves = decode(repeat('00', 256), 'hex')",
    )
    rewrite(ctx, 6, '{"n": 60}')
    report = verify(ctx)
    assert any("its copy of the leaves it signed was altered" in p for p in report.problems)
    assert report.first_bad() == (0, 7)  # one subtree of 8: a range, not a false exact entry


def test_deleting_the_newest_entries_is_found(ctx: ServerContext) -> None:
    append(ctx, 6)
    checkpoint(ctx)
    tamper(ctx, "DELETE FROM audit_events WHERE seq >= 4", "UPDATE audit_log_head SET size = 4")
    report = verify(ctx)
    assert not report.ok and report.first_bad_seq == 4
    assert any("covers entries 4..5" in p for p in report.problems)


def run_audit_verify(ctx: ServerContext, *args: str):  # type: ignore[no-untyped-def]
    from evidence_server.config import get_settings

    env = {
        "CUSTODIA_DATA_DIR": str(ctx.settings.data_dir),
        "CUSTODIA_DATABASE_URL": ctx.settings.database_url,
        "CUSTODIA_ENVIRONMENT": "test",
    }
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["audit", "verify", *args], env=env)
    finally:
        get_settings.cache_clear()


def test_custodia_audit_verify_names_the_first_bad_entry(ctx: ServerContext) -> None:
    append(ctx, 8)
    checkpoint(ctx)
    ok = run_audit_verify(ctx)
    assert ok.exit_code == 0, ok.output
    assert "audit log intact: 8 entries, 1 signed checkpoints match" in ok.output
    tamper(ctx, "UPDATE audit_events SET action = 'recording.nothing' WHERE seq = 2")
    bad = run_audit_verify(ctx, "--key", ctx.public_key_b64, "--full")
    assert bad.exit_code == 1
    assert "entry 2 (id 3, recording.nothing) was altered" in bad.output
    assert "first bad entry: 2" in bad.output


def test_incremental_verify_reads_only_what_came_after_and_still_finds_tampering_there(ctx: ServerContext) -> None:
    append(ctx, 8)
    checkpoint(ctx)
    first = run_audit_verify(ctx)
    assert first.exit_code == 0 and "verified by an earlier check" not in first.output  # the first check is full
    append(ctx, 8)
    checkpoint(ctx)
    second = run_audit_verify(ctx)
    assert second.exit_code == 0, second.output
    assert "16 entries, 2 signed checkpoints match (8 read now, entries 0..7 verified by an earlier check" in (
        second.output
    )
    append(ctx, 8)
    checkpoint(ctx)
    rewrite(ctx, 20, '{"n": 2000}')
    third = run_audit_verify(ctx)
    assert third.exit_code == 1
    assert "first bad entry: 20" in third.output


def test_incremental_verify_trusts_an_earlier_check_only_as_far_as_a_signed_checkpoint_agrees(
    ctx: ServerContext,
) -> None:
    append(ctx, 8)
    checkpoint(ctx)
    assert run_audit_verify(ctx).exit_code == 0
    tamper(ctx, "UPDATE audit_events SET action = 'recording.nothing' WHERE seq = 2")
    # what was verified is not read again (said so), but --full reads it and finds the change
    quick = run_audit_verify(ctx)
    assert quick.exit_code == 0 and "entries 0..7 verified by an earlier check; --full reads them again" in quick.output
    assert run_audit_verify(ctx, "--full").exit_code == 1
    # a forged record of the last check (a tree of its own) is not believed: everything is read again
    state = ctx.settings.data_dir / "audit" / "verified.json"
    doc = json.loads(state.read_text())
    doc.update(root="ab" * 32, subtrees=["ab" * 32])
    state.write_text(json.dumps(doc))
    forged = run_audit_verify(ctx)
    assert forged.exit_code == 1 and "first bad entry: 2" in forged.output
    # nor one made with another key
    doc.update(key="00" * 32)
    state.write_text(json.dumps(doc))
    assert run_audit_verify(ctx).exit_code == 1
