"""The daily rows check (``binding.check_rows``) at scale, for the recordings, transfers, ledger entries, case
links, cases, devices (against their ledger entries) and users (adopted first): rows per second and memory.

Loads ``bench_queries``' data into a fresh PostgreSQL database (``--recordings`` recordings, a tenth as many
checkouts, a twentieth as many cases), gives every recording a ``recording.verified`` entry with its
digests, as the receiver writes them (one ``INSERT … SELECT``: the rows check reads the entries' details, not their
leaf hashes), and every other row the entries the server writes about it (made in Python from the row with the
server's own functions, and copied in: a transfer's ``transfer.docked`` and ``transfer.task``, a ledger entry's
``ledger.<kind>``, a case link's ``case.link`` and, once unlinked, ``case.unlink``, a case's ``case.create``),
then times ``check_binding`` for each table in this process, the anti-join for rows the database lost included.
The peak RSS is the whole process's, the load included. Not part of the test command; the database is dropped
at the end. Run::

    .venv/bin/python -m tests.benchmarks.bench_binding --recordings 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from tests.benchmarks import bench_queries as bq

TABLES = ("recordings", "transfers", "ledger_entries", "case_links", "cases", "devices", "users")


DB_NAME = "custodia_bench_binding"

_ENTRIES = """
    INSERT INTO audit_events (seq, leaf_hash, at, actor_type, action, object_type, object_id, details)
    SELECT (SELECT coalesce(max(seq) + 1, 0) FROM audit_events) + row_number() OVER (ORDER BY id) - 1,
           repeat('0', 64), verified_at, 'system', 'recording.verified', 'recording', id::text,
           json_build_object('blake3', blake3, 'sha256', sha256, 'sm3', sm3, 'size', size,
                             'block_map_root', block_map_root)
    FROM recordings
"""


def _said(table: str, row: Any) -> Iterator[tuple[str, str, Any, dict[str, Any]]]:
    """The entries the server writes about one row: (action, object type, object id, details)."""
    from evidence_server.audit.evidence import fields_of
    from evidence_server.cases.models import CASE_EVIDENCE, LINK_EVIDENCE
    from evidence_server.ledger.models import ENTRY_EVIDENCE
    from evidence_server.transfers.models import TASK_EVIDENCE, docked_evidence

    if table == "transfers":
        yield "transfer.docked", "transfer", row.id, docked_evidence(row)
        yield "transfer.task", "transfer", row.id, {"via": "dock", **{k: getattr(row, k) for k in TASK_EVIDENCE}}
    elif table == "ledger_entries":
        yield f"ledger.{row.kind}", "ledger_entry", row.id, {"entry": fields_of(row, ENTRY_EVIDENCE)}
    elif table == "cases":
        yield "case.create", "case", row.id, {"case": fields_of(row, CASE_EVIDENCE)}
    elif table == "users":  # the loaded users have no creation entry: adopted, as an upgraded site's are
        from evidence_server.accounts.models import USER_EVIDENCE

        yield "user.adopted", "user", row.id, {"username": row.username, "user": fields_of(row, USER_EVIDENCE)}
    elif table == "case_links":
        link = fields_of(row, LINK_EVIDENCE)
        said = {"link_id": row.id, "case_id": row.case_id}
        yield "case.link", "recording", row.recording_id, {**said, "link": {**link, **dict.fromkeys(_UNLINK)}}
        if row.unlinked_at is not None:
            yield "case.unlink", "recording", row.recording_id, {**said, "reason": row.unlink_reason, "link": link}


_UNLINK = ("unlinked_at", "unlinked_by_id", "unlink_reason")
_LOG_COLUMNS = ("seq", "leaf_hash", "at", "actor_type", "action", "object_type", "object_id", "details")


def _entries(engine: Any, table: str) -> int:
    """The entries the server writes about every row of ``table``, copied into the log."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from evidence_server.binding.service import BINDINGS

    binding = next(b for b in BINDINGS if b.table == table)
    model = binding.model
    assert binding.columns is not None  # every binding timed here reads plain rows
    columns = [getattr(model, c) for c in binding.columns]
    out = bq.Table("audit_events", _LOG_COLUMNS)
    with Session(engine) as session:
        seq = session.execute(text("SELECT coalesce(max(seq) + 1, 0) FROM audit_events")).scalar_one()
        rows = session.execute(select(*columns).order_by(model.id).execution_options(yield_per=10_000))
        for row in rows:
            for action, object_type, object_id, details in _said(table, row):
                out.add(
                    seq,
                    "0" * 64,
                    "2026-01-01T00:00:00+00:00",
                    "system",
                    action,
                    object_type,
                    object_id,
                    json.dumps(details, ensure_ascii=False),
                )
                seq += 1
    if table == "users":  # the adoption's mark: users are bound from then on
        out.add(seq, "0" * 64, "2026-01-01T00:00:00+00:00", "system", "users.adopted", "user", None, "{}")
    with engine.begin() as conn:
        return out.copy_into(conn.connection.dbapi_connection)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=1_000_000)
    ap.add_argument("--tables", default=",".join(TABLES), help="the bindings to time (default: %(default)s)")
    args = ap.parse_args(argv)
    tables = [t for t in args.tables.split(",") if t]
    n = args.recordings
    url = bq.recreate_database(DB_NAME)
    try:
        bq.load(url, bq.Sizes(recordings=n, checkouts=max(1, n // 10), cases=max(4, n // 20)), bq.start_of_data())
        from sqlalchemy import create_engine

        engine = create_engine(url)
        with engine.begin() as conn:
            started = time.perf_counter()
            conn.execute(text(_ENTRIES))
            print(f"recording entries written in {time.perf_counter() - started:.1f} s", flush=True)
        for table in tables:
            if table not in ("recordings", "devices"):  # a device is checked against its ledger entries
                started = time.perf_counter()
                written = _entries(engine, table)
                print(f"{written:,} entries about {table} written in {time.perf_counter() - started:.1f} s", flush=True)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE audit_events"))
        engine.dispose()

        from evidence_server.audit import sequencer
        from evidence_server.binding.devices import check_devices
        from evidence_server.binding.service import BINDINGS, RowsReport, check_binding
        from evidence_server.db import make_engine, make_sessionmaker

        sequencer.GROUP_COMMIT = False  # nothing is appended: no look for pending entries before each read
        engine = make_engine(url)
        report = RowsReport()
        for table in tables:
            binding = next((b for b in BINDINGS if b.table == table), None)
            with make_sessionmaker(engine)() as session:
                load = os.getloadavg()[0]
                started, cpu = time.perf_counter(), time.process_time()
                if binding is None:
                    report.rows[table] = check_devices(session, report.findings)
                else:
                    check_binding(session, binding, report)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows = report.rows.get(table, 0)
            print(
                f"rows check, {table}: {rows:,} rows, {len(report.findings)} findings, "
                f"{wall:.1f} s ({cpu:.1f} s of CPU), {rows / wall:,.0f} rows/s, "
                f"peak RSS {rss:.0f} MiB, load {load:.1f}",
                flush=True,
            )
        engine.dispose()
        for finding in report.findings[:5]:
            print("  ", finding.message())
        return 1 if report.findings else 0
    finally:
        bq.drop_database(DB_NAME)


if __name__ == "__main__":
    raise SystemExit(main())
