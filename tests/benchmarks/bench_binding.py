"""The daily rows check (``binding.check_rows``) at scale, for the recordings: rows per second and memory.

Loads ``bench_queries``' data into a fresh PostgreSQL database (``--recordings`` recordings, a tenth as many
checkouts, a twentieth as many cases), gives every recording a ``recording.verified`` entry with its
digests, as the receiver writes them (one ``INSERT … SELECT``: the rows check reads the entries' details, not their
leaf hashes), then times ``check_binding`` for the recordings in this process, the anti-join for rows the
database lost included. The peak RSS is the whole process's, the load included. Not part of the test
command; the database is dropped at the end. Run::

    .venv/bin/python -m tests.benchmarks.bench_binding --recordings 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from tests.benchmarks import bench_queries as bq

DB_NAME = "custodia_bench_binding"

_ENTRIES = """
    INSERT INTO audit_events (seq, leaf_hash, at, actor_type, action, object_type, object_id, details)
    SELECT (SELECT coalesce(max(seq) + 1, 0) FROM audit_events) + row_number() OVER (ORDER BY id) - 1,
           repeat('0', 64), verified_at, 'system', 'recording.verified', 'recording', id::text,
           json_build_object('blake3', blake3, 'sha256', sha256, 'sm3', sm3, 'size', size,
                             'block_map_root', block_map_root)
    FROM recordings
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    n = args.recordings
    url = bq.recreate_database(DB_NAME)
    try:
        bq.load(url, bq.Sizes(recordings=n, checkouts=max(1, n // 10), cases=max(4, n // 20)), bq.start_of_data())
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            started = time.perf_counter()
            conn.execute(text(_ENTRIES))
            print(f"entries written in {time.perf_counter() - started:.1f} s", flush=True)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE audit_events"))
        engine.dispose()

        from evidence_server.audit import sequencer
        from evidence_server.binding.service import BINDINGS, RowsReport, check_binding
        from evidence_server.db import make_engine, make_sessionmaker

        sequencer.GROUP_COMMIT = False  # nothing is appended: no look for pending entries before each read
        engine = make_engine(url)
        recordings = next(b for b in BINDINGS if b.table == "recordings")
        with make_sessionmaker(engine)() as session:
            report = RowsReport()
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), time.process_time()
            check_binding(session, recordings, report)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        engine.dispose()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"rows check, recordings: {report.rows.get('recordings', 0):,} rows, {len(report.findings)} findings, "
            f"{wall:.1f} s ({cpu:.1f} s of CPU), {report.rows.get('recordings', 0) / wall:,.0f} rows/s, "
            f"peak RSS {rss:.0f} MiB, load {load:.1f}",
            flush=True,
        )
        return 1 if report.findings else 0
    finally:
        bq.drop_database(DB_NAME)


if __name__ == "__main__":
    raise SystemExit(main())
