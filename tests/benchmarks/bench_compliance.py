"""Compliance benchmark: a full scan over 1M recordings and 100k checkouts on PostgreSQL, and the
dashboard's aggregates. Targets: the scan within 60 s, the aggregates within 500 ms.

Not part of the test suite. Run it from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_compliance                      # 1M recordings, 100k checkouts
    .venv/bin/python -m tests.benchmarks.bench_compliance --checkouts 10000    # quicker

The data is loaded with COPY into a fresh, migrated database: 5,000 devices over 4 units, a year of
checkouts (each with its return, a dock 5 minutes later, and 10 five-minute segments, listed in the
dock's index and transferred), with about 2% of the checkouts carrying a violation (late docks, a
deleted segment, an editing tool's encoder, a clock off at the dock, a device never returned).
"""
from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from evidence_server.accounts.models import User
from evidence_server.compliance import dashboard
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.compliance.service import run_scan
from evidence_server.config import Settings
from evidence_server.context import ServerContext

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 12, 1, 9, 0, tzinfo=TZ)
SEGMENTS, SEGMENT_S = 10, 300


def ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def copy(conn: object, table: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> int:
    """COPY rows into a table (text format), in chunks."""
    cols = list(columns)
    n = 0
    raw = conn.connection.dbapi_connection  # type: ignore[attr-defined]
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ")
                                .replace("\n", " ") for v in row))
            buf.write("\n")
            n += 1
            if n % 20000 == 0:
                cp.write(buf.getvalue())
                buf = io.StringIO()
        cp.write(buf.getvalue())
    return n


def load(ctx: ServerContext, checkouts: int, devices: int, seed: int = 7) -> dict[str, int]:
    rnd = random.Random(seed)
    per_device = max(1, checkouts // devices)
    counts: dict[str, int] = {}
    with ctx.engine.begin() as conn:
        conn.execute(text("INSERT INTO units (id, code, name, created_at) VALUES "
                          "(1,'U1','一大队',now()),(2,'U2','二大队',now()),(3,'U3','三大队',now()),(4,'U4','四大队',now())"))
        conn.execute(text("INSERT INTO stations (id, name, unit_id, created_at) VALUES (1, 'bench', 1, now())"))
        officers = [(i, f"officer{i}", f"警员{i}", "x", "officer", 1 + i % 4, f"{100000 + i}", True, ts(START))
                    for i in range(1, 1001)]
        counts["users"] = copy(conn, "users", ("id", "username", "display_name", "password_hash", "role", "unit_id",
                                               "officer_no", "active", "created_at"), officers)
        counts["devices"] = copy(conn, "devices", ("id", "serial", "model", "family", "unit_id", "status",
                                                   "version", "created_at"),
                                 ((d, f"DSJ{d:06d}", "DSJ-V9", "zfy", 1 + d % 4, "available", per_device * 2 + 1,
                                   ts(START)) for d in range(1, devices + 1)))
        entries, transfers, recordings = [], [], []
        entry_id, rec_id = 0, 0
        for d in range(1, devices + 1):
            serial, unit = f"DSJ{d:06d}", 1 + d % 4
            entry_id += 1
            entries.append((entry_id, d, unit, 1, "register", ts(START - timedelta(days=30)),
                            ts(START - timedelta(days=30)), False, "available", None, None, None, None, None, None))
            for k in range(per_device):
                officer = 4 * ((d * 7 + k) % 249) + d % 4 + 4  # an officer of the device's unit
                out = START + timedelta(days=k * 365 // per_device, minutes=d % 300)
                back = out + timedelta(hours=1)
                never_back = k == per_device - 1 and rnd.random() < 0.02
                entry_id += 1
                checkout_id = entry_id
                offset_at_checkout = 200.0 if rnd.random() < 0.002 else 1.0
                entries.append((entry_id, d, unit, 2 + 2 * k, "checkout", ts(out), ts(out), False,
                                "checked_out", officer, f"{100000 + officer}", "执法检查",
                                ts(out + timedelta(hours=3)), offset_at_checkout, None))
                if never_back:
                    continue
                entry_id += 1
                entries.append((entry_id, d, unit, 3 + 2 * k, "return", ts(back), ts(back), False, "available",
                                officer, f"{100000 + officer}", None, None, None, checkout_id))
                late = rnd.random() < 0.01
                docked = back + (timedelta(hours=30) if late else timedelta(minutes=5))
                offset = 200.0 if rnd.random() < 0.002 else 0.5
                tid = str(uuid.uuid4())
                gap = rnd.random() < 0.005
                index = []
                for s in range(SEGMENTS):
                    if gap and s == 4:
                        continue
                    began = out + timedelta(minutes=5, seconds=SEGMENT_S * s)
                    local = began.astimezone(TZ)
                    path = f"DCIM/{local:%Y%m%d}/{serial}_{100000 + officer}_{local:%Y%m%d%H%M%S}_{s + 1:04d}.MP4"
                    size = 150_000_000 + rnd.randrange(1_000_000)
                    device_began = began + timedelta(seconds=offset)
                    index.append({"path": path, "size": size, "mtime": ts(device_began + timedelta(seconds=SEGMENT_S)),
                                  "started_at": ts(device_began)})
                    rec_id += 1
                    encoder = "Lavf60.3.100" if rnd.random() < 0.002 else "ZFY DSJ H.264 V1.0"
                    verified = docked + timedelta(minutes=5)
                    recordings.append((rec_id, f"blake3:{rec_id:064x}", f"sha256:{rec_id:064x}", size, f"k{rec_id}",
                                       unit, 1, tid, serial, f"{100000 + officer}", path, path.rsplit("/", 1)[1],
                                       ts(device_began), ts(device_began + timedelta(seconds=SEGMENT_S)),
                                       ts(device_began), ts(device_began + timedelta(seconds=SEGMENT_S)),
                                       ts(device_began), "done", float(SEGMENT_S), "h264", 1920, 1080, encoder,
                                       "ok", ts(docked), ts(verified), ts(verified), ts(verified)))
                transfers.append((tid, 1, unit, serial, json.dumps({"serial": serial, "family": "zfy"}),
                                  f"{100000 + officer}", ts(docked), ts(docked), offset, json.dumps(index), "[]",
                                  "done", len(index), len(index), ts(docked + timedelta(minutes=6))))
        counts["ledger_entries"] = copy(conn, "ledger_entries", (
            "id", "device_id", "unit_id", "seq", "kind", "occurred_at", "recorded_at", "late", "status_after",
            "officer_id", "officer_no", "enforcement_matter", "expected_return_at", "clock_offset_s", "refers_to_id",
            "override"), (e + (False,) for e in entries))
        counts["transfers"] = copy(conn, "transfers", (
            "id", "station_id", "unit_id", "device_serial", "device", "officer_no", "docked_at", "received_at",
            "clock_offset_s", "index", "rejected", "state", "files_total", "files_done", "completed_at", "bytes_total",
            "bytes_done"), (t + (0, 0) for t in transfers))
        counts["recordings"] = copy(conn, "recordings", (
            "id", "blake3", "sha256", "size", "storage_key", "unit_id", "station_id", "transfer_id", "device_serial",
            "officer_no", "original_path", "original_name", "name_started_at", "name_ended_at",
            "container_started_at", "container_ended_at", "container_created_at", "probe_state", "duration_s",
            "codec", "width", "height", "encoder", "fixity_state", "docked_at", "uploaded_at", "verified_at",
            "created_at"), recordings)
        for table, column in (("units", "id"), ("users", "id"), ("devices", "id"), ("ledger_entries", "id"),
                              ("recordings", "id"), ("stations", "id")):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "  # noqa: S608
                              f"(SELECT max({column}) FROM {table}))"))  # (constant names, no input)
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkouts", type=int, default=100_000)
    p.add_argument("--devices", type=int, default=5_000)
    p.add_argument("--keep", action="store_true", help="do not drop the database afterwards (prints its URL)")
    p.add_argument("--url", help="scan a database loaded by an earlier --keep run instead of loading one")
    args = p.parse_args()
    from tests.support.databases import PostgresTemplates

    templates = PostgresTemplates()
    url = args.url or templates.fresh()
    import tempfile

    settings = Settings(database_url=url, data_dir=tempfile.mkdtemp(), environment="test")
    ctx = ServerContext(settings)
    try:
        if not args.url:
            t0 = time.perf_counter()
            counts = load(ctx, args.checkouts, args.devices)
            print(f"loaded with COPY in {time.perf_counter() - t0:.1f} s: {counts}")
            if args.keep:
                print(f"database kept: --url {url}")
        now = START + timedelta(days=400)
        for label in ("full scan (first: raises the flags)", "full scan (again: nothing changes)"):
            with ctx.sessionmaker() as session:
                t0 = time.perf_counter()
                result = run_scan(session, settings, now=now)
                took = time.perf_counter() - t0
            print(f"{label}: {took:.1f} s for {result.devices} devices  {dict(result.counts)}  "
                  f"(target <= 60 s)")
        with ctx.sessionmaker() as session:
            flags = session.scalar(select(func.count()).select_from(ComplianceFlag))
            print(f"flags by kind: {dict(session.execute(select(ComplianceFlag.kind, func.count()).group_by(ComplianceFlag.kind)).all())}")  # noqa: E501
            legal = User(id=0, username="legal", display_name="legal", password_hash="x", role="legal_affairs",
                         unit_id=1)
            admin = User(id=0, username="admin1", display_name="admin", password_hash="x", role="device_admin",
                         unit_id=1)
            period = dashboard.Period(date(2025, 12, 1), date(2026, 11, 30), TZ)
            for who in (legal, admin):
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    fig = dashboard.figures(session, who, period)
                    times.append(time.perf_counter() - t0)
                rates = ", ".join(f"{r.unit_name} {r.rate:.3f}" for r in fig.rates if r.rate is not None)
                print(f"dashboard aggregates as {who.role}: median {statistics.median(times) * 1000:.0f} ms, "
                      f"best {min(times) * 1000:.0f} ms over {flags} flags, {fig.total} counted "
                      f"(target <= 500 ms); rates: {rates}")
            session.expunge_all()
    finally:
        ctx.close()
        if not args.keep and not args.url:
            templates.drop_all()


if __name__ == "__main__":
    main()
