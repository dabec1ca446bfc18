"""Group commit on PostgreSQL: entries commit with their change, unlocked, and are placed in the log in batches.

The promises: a writer never waits for the log; every read of the log, in any process, finds every
entry committed before it in its place; nothing committed is ever lost, even when the process dies
between its commit and the entry's placement; nothing rolled back ever appears; and the log has no
gap or duplicate however many writers race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from evidence_server.audit import sequencer
from evidence_server.audit.fullcheck import verify_log
from evidence_server.audit.log import issue_checkpoint, log_size, stream_rows
from evidence_server.audit.models import AuditEvent, AuditPending
from evidence_server.audit.service import record
from evidence_server.audit.tasks import audit_sequence
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from tests.support.databases import PostgresTemplates

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_ctx(tmp_path: Path, postgres_templates: PostgresTemplates) -> Iterator[ServerContext]:
    """Group commit is PostgreSQL's: SQLite, one writer at a time, places entries as it commits."""
    c = ServerContext(
        Settings(data_dir=tmp_path / "server", database_url=postgres_templates.fresh(), environment="test")
    )
    yield c
    c.close()


def counts(ctx: ServerContext) -> tuple[int, int]:
    with ctx.sessionmaker() as s:
        return (
            int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0),
            int(s.scalar(select(func.count()).select_from(AuditPending)) or 0),
        )


def test_an_entry_is_in_the_log_when_its_commit_returns(pg_ctx: ServerContext) -> None:
    with pg_ctx.sessionmaker() as s:
        record(s, "recording.view", object_type="recording", object_id=1)
        s.commit()
    assert counts(pg_ctx) == (1, 0)


def pending(ctx: ServerContext) -> int:
    """Entries committed and not yet placed (a look that does not itself place them)."""
    with ctx.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(AuditPending)) or 0)


def test_entries_a_dead_process_left_pending_are_placed_and_signed(
    pg_ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after its commit, before placing its entries: they stay committed, pending."""
    with monkeypatch.context() as m:
        m.setattr(sequencer.Sequencer, "nudge", lambda self, *args, **kw: 0)
        with pg_ctx.sessionmaker() as s:
            for i in range(3):
                record(s, "recording.download", object_type="recording", object_id=i)
            s.commit()
    assert pending(pg_ctx) == 3
    with pg_ctx.sessionmaker() as s:
        record(s, "auth.login", object_type="user", object_id=9)
        s.rollback()  # and a rolled-back entry never appears anywhere
    assert pending(pg_ctx) == 3
    assert audit_sequence(pg_ctx) == 3  # the periodic task (or any later read of the log) places them
    with pg_ctx.sessionmaker() as s:
        record(s, "recording.view", object_type="recording", object_id=5)
        s.commit()
        with monkeypatch.context() as m:
            m.setattr(sequencer.Sequencer, "nudge", lambda self, *args, **kw: 0)
            record(s, "recording.view", object_type="recording", object_id=6)
            s.commit()
        assert pending(pg_ctx) >= 1  # (the first one's run may not have happened yet either)
        cp, _ = issue_checkpoint(pg_ctx, s)  # a checkpoint signs what was committed, pending or not
        assert cp.tree_size == log_size(s) == 5
        assert [a for (a,) in s.execute(select(AuditEvent.action).order_by(AuditEvent.seq))] == [
            "recording.download",
            "recording.download",
            "recording.download",
            "recording.view",
            "recording.view",
        ]
        assert verify_log(s, pg_ctx.signing_key.public_key()).ok


def test_a_writer_never_waits_for_the_log(pg_ctx: ServerContext) -> None:
    """Another process holds the log head (a long sequencing run, a hung one): writers still commit
    and answer at once; their entries are durable, pending, and placed once the head is free."""
    with pg_ctx.sessionmaker() as s:  # the head row exists
        record(s, "bench.warm_up")
        s.commit()
    assert counts(pg_ctx) == (1, 0)
    answered: list[int] = []

    def writer() -> None:
        for i in range(5):
            with pg_ctx.sessionmaker() as s:
                record(s, "recording.view", object_type="recording", object_id=i)
                s.commit()
            answered.append(i)

    holder = pg_ctx.engine.connect()
    try:
        holder.execution_options(**{sequencer.SEQUENCING: True})
        holder.execute(text("SELECT size FROM audit_log_head WHERE id = 1 FOR UPDATE"))
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        t.join(timeout=5)
        assert answered == [0, 1, 2, 3, 4], "a writer waited for the log's lock"
        assert pending(pg_ctx) == 5
    finally:
        holder.rollback()
        holder.close()
    assert counts(pg_ctx) == (6, 0)


def test_every_reader_in_any_process_finds_what_was_committed_before_it(
    pg_ctx: ServerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's process never places its entries (its sequencer is slow, or it died): a reader in
    another process, by whatever path it reads the log (ORM, Core stream, the head), finds them."""
    monkeypatch.setattr(sequencer.Sequencer, "nudge", lambda self, *args, **kw: 0)
    other = ServerContext(pg_ctx.settings.model_copy(update={"data_dir": tmp_path / "other"}))
    try:
        readers = {
            "orm": lambda s, oid: s.scalar(select(AuditEvent.seq).where(AuditEvent.object_id == oid)) is not None,
            "join": lambda s, oid: (
                s.scalar(
                    select(func.count())
                    .select_from(AuditPending)
                    .join(AuditEvent, AuditEvent.object_id == oid, full=True)
                    .where(AuditEvent.object_id == oid)
                )
                == 1
            ),
            "core": lambda s, oid: (
                oid
                in {
                    r.object_id for r in stream_rows(s, select(AuditEvent.object_id).where(AuditEvent.object_id == oid))
                }
            ),
            "head": lambda s, oid: log_size(s) == int(oid) + 1,
            "text": lambda s, oid: (
                s.scalar(text("\n  (select count(*) from audit_events where object_id = :oid)"), {"oid": oid}) == 1
            ),
        }
        for n, (name, found) in enumerate(readers.items()):
            with pg_ctx.sessionmaker() as s:
                record(s, "recording.view", object_type="recording", object_id=n)
                s.commit()
            assert pending(pg_ctx) == 1
            with other.sessionmaker() as s:
                assert found(s, str(n)), f"a {name} read did not find the entry committed before it"
            assert pending(pg_ctx) == 0
    finally:
        other.close()
    with pg_ctx.sessionmaker() as s:
        assert verify_log(s, pg_ctx.signing_key.public_key()).ok


def test_racing_writers_and_sequencers_leave_no_gap_and_no_duplicate(pg_ctx: ServerContext) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with pg_ctx.sessionmaker() as s:
                    record(s, "recording.view", object_type="recording", object_id=n * 100 + i)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def extra_sequencer() -> None:  # another process's sequencer, racing for the same entries
        for _ in range(30):
            sequencer.sequence(pg_ctx.engine)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    threads += [threading.Thread(target=extra_sequencer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg_ctx.sessionmaker() as s:
        seqs = list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        ids = sorted(int(o) for o in s.scalars(select(AuditEvent.object_id)))
    assert seqs == list(range(90))
    assert ids == sorted(n * 100 + i for n in range(6) for i in range(15))  # each exactly once
    assert counts(pg_ctx) == (90, 0)


def test_each_writer_finds_its_entry_in_the_log_when_its_commit_returns_whoever_placed_it(
    pg_ctx: ServerContext, tmp_path: Path
) -> None:
    """Two engines stand for two API processes, each with its own sequencer racing the other's: a writer
    reading the log right after its commit finds its entry there, whichever run placed it."""
    other = ServerContext(pg_ctx.settings.model_copy(update={"data_dir": tmp_path / "other"}))
    missing: list[int] = []

    def writer(ctx: ServerContext, n: int) -> None:
        for i in range(20):
            oid = n * 100 + i
            with ctx.sessionmaker() as s:
                record(s, "recording.view", object_type="recording", object_id=oid)
                s.commit()
                if s.scalar(select(AuditEvent.seq).where(AuditEvent.object_id == str(oid))) is None:
                    missing.append(oid)

    try:
        threads = [threading.Thread(target=writer, args=(pg_ctx if n % 2 else other, n)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert missing == []
    assert counts(pg_ctx) == (120, 0)
    with pg_ctx.sessionmaker() as s:
        assert verify_log(s, pg_ctx.signing_key.public_key()).ok


def test_an_entry_keeps_its_requests_time_and_the_log_never_runs_backwards(
    pg_ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries placed an hour late keep the time their request recorded them. One recorded first and
    committed last is placed after the other (its place is its commit's) at the other's time: the log's
    times never run backwards, and the signed tree covers exactly those times."""
    time_machine = pytest.importorskip("time_machine")
    monkeypatch.setattr(sequencer.Sequencer, "nudge", lambda self: None)  # placed only when someone reads
    t1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    t2 = t1 + timedelta(minutes=5)
    slow = pg_ctx.sessionmaker()
    try:
        with time_machine.travel(t1, tick=False):
            record(slow, "recording.view", object_type="recording", object_id=1)  # recorded first …
        with time_machine.travel(t2, tick=False), pg_ctx.sessionmaker() as s:
            record(s, "recording.view", object_type="recording", object_id=2)
            s.commit()
        with time_machine.travel(t2 + timedelta(hours=1), tick=False), pg_ctx.sessionmaker() as s:
            assert s.scalar(select(AuditEvent.at).where(AuditEvent.object_id == "2")) == t2
        slow.commit()  # … committed last
    finally:
        slow.close()
    with time_machine.travel(t2 + timedelta(hours=2), tick=False), pg_ctx.sessionmaker() as s:
        rows = s.execute(select(AuditEvent.object_id, AuditEvent.at).order_by(AuditEvent.seq)).all()
        assert [tuple(r) for r in rows] == [("2", t2), ("1", t2)]
        assert verify_log(s, pg_ctx.signing_key.public_key()).ok


def test_a_closing_process_places_what_it_committed(
    tmp_path: Path, postgres_templates: PostgresTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process's runs never come (it is shutting down): closing its context places its entries, so
    nothing it committed waits for another process to read the log."""
    monkeypatch.setattr(sequencer.Sequencer, "_run", lambda self: None)
    settings = Settings(data_dir=tmp_path / "server", database_url=postgres_templates.fresh(), environment="test")
    closing = ServerContext(settings)
    with closing.sessionmaker() as s:
        for i in range(3):
            record(s, "recording.download", object_type="recording", object_id=i)
        s.commit()
    assert pending(closing) == 3
    closing.close()
    after = ServerContext(settings)
    try:
        assert pending(after) == 0  # (this look does not place anything itself)
        assert counts(after) == (3, 0)
    finally:
        after.close()


_WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def test_a_reader_whose_run_loses_its_batch_to_another_still_finds_every_entry(
    pg_ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's run holds the oldest batch when a reader comes: the reader's run waits, finds
    that batch gone and moves nothing, while the rest is still pending. The reader must not stop there."""
    monkeypatch.setattr(sequencer, "BATCH", 5)
    monkeypatch.setattr(sequencer.Sequencer, "nudge", lambda self: None)  # nobody places but the two runs
    with pg_ctx.sessionmaker() as s:
        for i in range(12):
            record(s, "recording.view", object_type="recording", object_id=i)
        s.commit()
    other = pg_ctx.engine.connect()
    other.execution_options(**{sequencer.SEQUENCING: True})
    found: list[int] = []
    try:
        other.begin()
        assert sequencer._move(other)[0] == 5  # the other run's first batch, not yet committed
        reader = threading.Thread(
            target=lambda: found.append(counts(pg_ctx)[0]), daemon=True
        )  # (the count reads the log: it places first)
        reader.start()
        with pg_ctx.engine.connect() as look:  # until the reader's run waits on the other's batch
            for _ in range(100):
                waiting = look.scalar(_WAITING_ON_A_LOCK)
                look.rollback()  # (the activity view is read once a transaction)
                if waiting:
                    break
                threading.Event().wait(0.05)
            assert waiting, "the reader's run never waited for the other's batch"
        other.commit()  # the other run stops after one batch (as if its process died)
        reader.join(timeout=10)
    finally:
        other.close()
    assert found == [12]
