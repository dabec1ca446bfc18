"""Audit-log benchmark: entries appended per second, proofs at growing log sizes, and a full check.

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
import multiprocessing as mp
import random
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text, update

from custodia_wire import auditlog
from evidence_server.audit.fullcheck import verify_log
from evidence_server.audit.log import consistency_document, inclusion_document, issue_checkpoint, log_size
from evidence_server.audit.models import AuditCheckpoint, AuditEvent, AuditLogHead
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


def copy_load(ctx: ServerContext, start: int, total: int) -> None:
    """Entries start..total-1 as record() would have written them, loaded with COPY (PostgreSQL)."""
    at0 = utcnow()
    raw = ctx.engine.raw_connection()
    try:
        cur = raw.cursor()  # type: ignore[attr-defined]
        columns = "seq, leaf_hash, at, actor_type, actor_id, actor_name, action, object_type, object_id, client_addr"
        with cur.copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
            for seq in range(start, total):
                at = at0 + timedelta(microseconds=seq)
                actor = 1 + seq % 50
                action = ("recording.view", "recording.playback", "auth.login")[seq % 3]
                leaf = auditlog.columns_leaf_hash(
                    seq, at, "user", actor, f"officer{actor}", action, "recording", str(seq // 7), "10.1.2.3", None
                )
                copy.write_row(
                    (
                        seq,
                        leaf.hex(),
                        at,
                        "user",
                        actor,
                        f"officer{actor}",
                        action,
                        "recording",
                        str(seq // 7),
                        "10.1.2.3",
                    )
                )
        cur.execute("UPDATE audit_log_head SET size = %s WHERE id = 1", (total,))
        raw.commit()
    finally:
        raw.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proof_times(ctx: ServerContext, old: AuditCheckpoint, new: AuditCheckpoint, count: int) -> dict[str, float]:
    """p50/p95 ms of inclusion proofs of random entries and of consistency proofs, against ``new``."""
    rng = random.Random(7)
    inclusion, consistency = [], []
    with ctx.sessionmaker() as s:
        for _ in range(count):
            seq = rng.randrange(new.tree_size)
            started = time.perf_counter()
            inclusion_document(s, seq, new)
            inclusion.append((time.perf_counter() - started) * 1000)
            s.rollback()  # a fresh snapshot and no cached tiles, as separate requests would have
        for _ in range(max(10, count // 4)):
            started = time.perf_counter()
            consistency_document(s, old, new)
            consistency.append((time.perf_counter() - started) * 1000)
            s.rollback()
    return {
        "inclusion_p50_ms": round(percentile(inclusion, 0.5), 2),
        "inclusion_p95_ms": round(percentile(inclusion, 0.95), 2),
        "consistency_p95_ms": round(percentile(consistency, 0.95), 2),
    }


def bench_proofs(ctx: ServerContext, sizes: list[int], count: int) -> dict[str, Any]:
    """Grow the log to each size (COPY), sign it (building its tiles), time proofs at each size."""
    out: dict[str, Any] = {}
    with ctx.sessionmaker() as s:
        first = issue_checkpoint(ctx, s)[0]
    for size in sizes:
        with ctx.sessionmaker() as s:
            have = log_size(s)
        started = time.perf_counter()
        copy_load(ctx, have, size)
        loaded = time.perf_counter() - started
        with ctx.sessionmaker() as s:
            started = time.perf_counter()
            cp = issue_checkpoint(ctx, s)[0]
            signed = time.perf_counter() - started
        figures = proof_times(ctx, first, cp, count)
        print(
            f"[audit] {size:>11,} entries: load {loaded:6.1f} s, checkpoint (+tiles) {signed:6.1f} s, "
            f"inclusion p50 {figures['inclusion_p50_ms']} ms p95 {figures['inclusion_p95_ms']} ms, "
            f"consistency p95 {figures['consistency_p95_ms']} ms",
            flush=True,
        )
        out[str(size)] = {"checkpoint_s": round(signed, 2), **figures}
    return out


def bench_writers(url: str, tmp: str, writers: int, per_writer: int, audit: bool) -> float:
    """Entries (or plain rows) per second from ``writers`` processes, one per transaction, all started at once."""
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(writers + 1)
    procs = [ctx.Process(target=_writer, args=(url, tmp, per_writer, audit, ready)) for _ in range(writers)]
    for p in procs:
        p.start()
    ready.wait()  # every process imported and connected
    began = time.perf_counter()
    for p in procs:
        p.join()
    return writers * per_writer / (time.perf_counter() - began)


def _writer(url: str, tmp: str, count: int, audit: bool, ready: Any) -> None:
    ctx = ServerContext(Settings(data_dir=Path(tmp), database_url=url, environment="test"))
    with ctx.sessionmaker() as session:  # connect (and warm the statement caches) before the clock starts
        record(session, "bench.warm_up")
        session.commit()
    ready.wait()
    for i in range(count):
        with ctx.sessionmaker() as session:
            if audit:
                record(session, "recording.view", object_type="recording", object_id=i, details={"via": "bench"})
            else:
                session.execute(text("INSERT INTO bench_baseline (note) VALUES ('x')"))
            session.commit()
    ctx.close()


def collect(argv: list[str]) -> dict[str, Any]:
    """P7 for the suite runner: appends from 8 writer processes beside plain transactions, and proofs."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000", help="log sizes to time proofs at (comma-separated)")
    ap.add_argument("--proofs", type=int, default=200)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--per-writer", type=int, default=400)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        url, templates = fresh_database("postgres", Path(tmp))
        ctx = ServerContext(Settings(data_dir=Path(tmp), database_url=url, environment="test"))
        try:
            with ctx.engine.begin() as conn:
                conn.execute(text("CREATE TABLE bench_baseline (id SERIAL PRIMARY KEY, note VARCHAR(64))"))
            plain = bench_writers(url, tmp, args.writers, args.per_writer, audit=False)
            appends = bench_writers(url, tmp, args.writers, args.per_writer, audit=True)
            print(
                f"[audit] {args.writers} writer processes: plain transactions {plain:,.0f}/s, "
                f"audit appends {appends:,.0f}/s ({appends / plain:.2f} of plain)",
                flush=True,
            )
            with ctx.sessionmaker() as s:
                assert verify_log(s, ctx.signing_key.public_key()).ok  # every entry in the tree
            proofs = bench_proofs(ctx, sizes, args.proofs)
        finally:
            ctx.close()
            templates.drop_all()  # type: ignore[attr-defined]
    small, large = proofs[str(sizes[0])], proofs[str(sizes[-1])]
    return {
        "p7_appends_per_s": round(appends),
        "p7_appends_vs_plain": round(appends / plain, 2),
        "p7_plain_tx_per_s": round(plain),
        "p7_proofs": proofs,
        "p7_inclusion_p95_ms": large["inclusion_p95_ms"],
        "p7_inclusion_growth": round(large["inclusion_p95_ms"] / max(small["inclusion_p95_ms"], 0.01), 2),
        "p7_consistency_p95_ms": large["consistency_p95_ms"],
        "p7_sizes": sizes,
    }


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
            bulk_load(ctx, cp2.tree_size, cp2.tree_size + 1000)
            with ctx.sessionmaker() as s:
                issue_checkpoint(ctx, s)
            with ctx.sessionmaker() as s:
                since = report.verified
                incremental = timed(
                    "verify incrementally from the last verified checkpoint (+1,000 entries)",
                    lambda: verify_log(s, ctx.signing_key.public_key(), since=since),
                )
                assert incremental.ok and incremental.since == cp2.tree_size, incremental.problems
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
