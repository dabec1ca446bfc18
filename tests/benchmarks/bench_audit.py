"""Audit-log benchmark: entries appended per second, and the time to check a log of 1M entries.

Not part of the test suite. Run it from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_audit                  # PostgreSQL at 127.0.0.1:5432
    .venv/bin/python -m tests.benchmarks.bench_audit --db sqlite
    .venv/bin/python -m tests.benchmarks.bench_audit --entries 100000  # quicker

Appends go through ``record()`` exactly as the routes use it, one entry per transaction (a request),
from several threads at once. The 1M-entry log is then bulk-loaded (same leaf hashing) and timed
through what a court-facing check does: sign a checkpoint over it, recompute it end to end
(``custodia audit verify``), and build an inclusion and a consistency proof.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text, update

from custodia_wire import auditlog
from evidence_server.audit.fullcheck import verify_log
from evidence_server.audit.log import consistency_document, inclusion_document, issue_checkpoint
from evidence_server.audit.models import AuditEvent, AuditLogHead
from evidence_server.audit.service import record
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.db import utcnow


def fresh_database(kind: str, root: Path) -> tuple[str, object | None]:
    if kind == "sqlite":
        from evidence_server.dbadmin import upgrade

        url = f"sqlite:///{root / 'bench.sqlite3'}"
        upgrade(url)
        return url, None
    from tests.support.databases import PostgresTemplates

    templates = PostgresTemplates()
    return templates.fresh(), templates


def bench_appends(ctx: ServerContext, count: int, threads: int) -> float:
    per_thread = count // threads

    def worker(n: int) -> None:
        for i in range(per_thread):
            with ctx.sessionmaker() as session:
                record(
                    session,
                    "recording.view",
                    object_type="recording",
                    object_id=n * per_thread + i,
                    details={"via": "bench", "range": "bytes=0-1023"},
                )
                session.commit()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return per_thread * threads / (time.perf_counter() - started)


def bench_baseline(ctx: ServerContext, count: int, threads: int) -> float:
    """The same transactions without the audit log: one plain row inserted and committed each."""
    with ctx.engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY, note VARCHAR(64))"))
    per_thread = count // threads

    def worker(n: int) -> None:
        for i in range(per_thread):
            with ctx.sessionmaker() as session:
                session.execute(
                    text("INSERT INTO bench_baseline (id, note) VALUES (:id, 'x')"), {"id": n * per_thread + i}
                )
                session.commit()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return per_thread * threads / (time.perf_counter() - started)


def bulk_load(ctx: ServerContext, start: int, total: int, batch: int = 20_000) -> None:
    """Entries start..total-1 as record() would have written them, inserted in bulk."""
    at0 = utcnow()
    with ctx.engine.begin() as conn:
        rows = []
        for seq in range(start, total):
            entry = {
                "seq": seq,
                "at": auditlog.entry_time(at0 + timedelta(microseconds=seq)),
                "actor": {"type": "user", "id": 1 + seq % 50, "name": f"officer{seq % 50}"},
                "action": ("recording.view", "recording.playback", "auth.login")[seq % 3],
                "object": {"type": "recording", "id": str(seq // 7)},
                "client_addr": "10.1.2.3",
                "details": {"range": f"bytes={seq}-"} if seq % 3 == 1 else None,
            }
            rows.append(
                {
                    "seq": seq,
                    "leaf_hash": auditlog.entry_leaf_hash(entry).hex(),
                    "at": at0 + timedelta(microseconds=seq),
                    "actor_type": "user",
                    "actor_id": entry["actor"]["id"],
                    "actor_name": entry["actor"]["name"],
                    "action": entry["action"],
                    "object_type": "recording",
                    "object_id": entry["object"]["id"],
                    "client_addr": "10.1.2.3",
                    "details": entry["details"],
                }
            )
            if len(rows) == batch:
                conn.execute(insert(AuditEvent), rows)
                rows.clear()
        if rows:
            conn.execute(insert(AuditEvent), rows)
        conn.execute(update(AuditLogHead).where(AuditLogHead.id == 1).values(size=total))


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    print(f"{label:<52} {time.perf_counter() - started:8.2f} s")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--entries", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, templates = fresh_database(args.db, Path(tmp))
        ctx = ServerContext(Settings(data_dir=Path(tmp), database_url=url, environment="test"))
        try:
            base = bench_baseline(ctx, args.appends, args.threads)
            rate = bench_appends(ctx, args.appends, args.threads)
            rate1 = bench_appends(ctx, args.appends // 4, 1)
            print(f"[{args.db}] baseline: plain one-row transactions, {args.threads} threads: {base:,.0f} /s")
            print(f"[{args.db}] audit appends, one entry per transaction, {args.threads} threads: {rate:,.0f} /s")
            print(f"[{args.db}] audit appends, one entry per transaction, 1 thread:  {rate1:,.0f} /s")
            with ctx.sessionmaker() as s:
                many = time.perf_counter()
                for i in range(1000):
                    record(s, "recording.view", object_type="recording", object_id=i)
                s.commit()
            print(
                f"[{args.db}] audit appends, 1,000 entries in one transaction: "
                f"{1000 / (time.perf_counter() - many):,.0f} /s"
            )
            with ctx.sessionmaker() as s:
                start = int(s.scalar(AuditLogHead.__table__.select().with_only_columns(AuditLogHead.size)) or 0)
            timed(
                f"bulk load to {args.entries:,} entries (setup, not a figure)",
                lambda: bulk_load(ctx, start, args.entries),
            )
            with ctx.sessionmaker() as s:
                cp, _ = timed(
                    f"sign the first checkpoint over {args.entries:,} entries", lambda: issue_checkpoint(ctx, s)
                )
            bulk_load(ctx, args.entries, args.entries + 1000)
            with ctx.sessionmaker() as s:
                cp2, _ = timed("sign the next checkpoint (+1,000 entries)", lambda: issue_checkpoint(ctx, s))
            with ctx.sessionmaker() as s:
                report = timed(
                    f"verify the whole log ({cp2.tree_size:,} entries, 2 checkpoints)",
                    lambda: verify_log(s, ctx.signing_key.public_key()),
                )
                assert report.ok, report.problems
            with ctx.sessionmaker() as s:
                timed("inclusion proof for one entry", lambda: inclusion_document(s, cp.tree_size // 3, cp2))
            with ctx.sessionmaker() as s:
                timed("consistency proof between the two checkpoints", lambda: consistency_document(s, cp, cp2))
        finally:
            ctx.close()
            if templates is not None:
                templates.drop_all()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
