"""Query benchmark (issue 10, P5): PostgreSQL loaded with COPY with 1M recordings, 100k checkouts and
50k cases; lookups by case number over the HTTP API, the full compliance scan, the compliance dashboard.

Targets: lookup by case number p95 <= 20 ms (over >= 1000 requests), a full compliance scan <= 60 s,
the dashboard's aggregates <= 500 ms (p95 over 20 requests). Not part of the test suite; ``scripts/bench``
runs it with the others. Alone, from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_queries --json bench-queries.json       # full size
    .venv/bin/python -m tests.benchmarks.bench_queries --recordings 100000 --checkouts 10000 --cases 5000
    .venv/bin/python -m tests.benchmarks.bench_queries --keep        # then, measuring only:
    .venv/bin/python -m tests.benchmarks.bench_queries --reuse [--skip-scan]

The data goes into a fresh database (``custodia_bench_p5``: dropped, created, migrated with
``dbadmin.upgrade``), written with COPY: 4 units, 1,000 officers, one device per 20 checkouts, a
year of checkouts up to a few days ago (each with its return, a dock 5 minutes later and its
segments, listed in the dock's index and transferred; about 2% carry a violation: late docks, a
deleted segment, an editing tool's encoder, a clock off at the dock, a device never returned). As in
service, each recording has its SM3, its block map and a fixity check within two days of arrival. Rows
go in in time order with the devices interleaved, as docks bring them. Then the cases: 70% of the
checkouts' footage is linked to one of the cases of the checkout's unit (a case holds one or two
checkouts' footage, some none), 1% of the links were unlinked again, 2% of the cases are shared with
another unit, and the checkouts and transfers carry their case's number and id.

Then, in this order: the full compliance scan as the scheduled job runs it (twice: the first raises
the flags, the second is the steady state), the API server as a separate process (uvicorn), 1,000
lookups by a case handler of U1 of random case numbers they may see (their unit's and those shared
with it), typed as people type them (``GET /api/v1/search?case_number=…``: the case and its
footage), 1,000 by legal affairs (any case), legal affairs' dashboard
(``GET /api/v1/compliance/dashboard``, the last twelve months), the pages people open, ``/metrics``
(its first scrape and the next), and each scheduled job's choice of work (``job_selections``).

``collect(argv)`` returns the figures as a flat dict (for ``tests/benchmarks/run.py``); ``main(argv)``
prints the table and writes ``--json``. (This replaces ``bench_compliance.py``, which timed the scan
and the dashboard in-process without cases.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

DB_NAME = "custodia_bench_p5"
TZ = ZoneInfo("Asia/Shanghai")
SEGMENT_S = 300
UNITS = (
    (1, "U1", "一大队", "杭一"),
    (2, "U2", "二大队", "杭二"),
    (3, "U3", "三大队", "杭三"),
    (4, "U4", "四大队", "杭四"),
)
OFFICERS = 1000
LINKED_SHARE = 0.7  # checkouts whose footage is linked to a case
PASSWORD = "bench-password-123"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# --- COPY ----------------------------------------------------------------------------------------------


#: a block map's hashes in COPY's text form of bytea (one block's zeros: no query reads them)
MAP_HASHES = "\\x" + "00" * 32


def _field(v: object) -> str:
    if v is None:
        return "\\N"
    if v is True or v is False:
        return "t" if v else "f"
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class Table:
    """Rows for one table, spooled to a temporary file in COPY's text format, copied in one go."""

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name, self.columns, self.rows = name, list(columns), 0
        self.file: TextIO = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115

    def add(self, *row: object) -> None:
        self.file.write("\t".join(map(_field, row)))
        self.file.write("\n")
        self.rows += 1

    def copy_into(self, raw: Any) -> int:
        self.file.seek(0)
        with raw.cursor() as cur, cur.copy(f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN") as cp:
            while chunk := self.file.read(1 << 20):
                cp.write(chunk)
        self.file.close()
        return self.rows


def ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@dataclass
class Sizes:
    recordings: int = 1_000_000
    checkouts: int = 100_000
    cases: int = 50_000
    devices: int = 0  # 0: one per 20 checkouts (at least 4, at most 5,000)
    seed: int = 7

    def __post_init__(self) -> None:
        self.checkouts = max(1, self.checkouts)
        self.cases = max(4, self.cases)
        if not self.devices:
            self.devices = min(5_000, max(4, self.checkouts // 20))
        self.segments = max(1, round(self.recordings / self.checkouts))


@dataclass
class Loaded:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def case_number(c: int, start_year: int) -> str:
    """Unique per case id: organ of the unit, year, serial (``杭一市监处罚〔2026〕123号``)."""
    unit = c % 4
    year = start_year + (c // 4) % 2
    serial = c // 8 + 1
    return f"{UNITS[unit][3]}市监处罚〔{year}〕{serial}号"


def typed(number: str, rnd: random.Random) -> str:
    """How a case handler types it: mostly as written, sometimes with other brackets or full-width digits."""
    r = rnd.random()
    if r < 0.1:
        return number.replace("〔", "[").replace("〕", "]")
    if r < 0.15:
        return number.replace("〔", "（").replace("〕", "）").translate(FULL_WIDTH)
    return number


def generate(sizes: Sizes, start: datetime) -> tuple[list[Table], Loaded]:
    """Every row, spooled per table in the order the foreign keys need."""
    rnd = random.Random(sizes.seed)
    loaded = Loaded()
    per_device = max(1, sizes.checkouts // sizes.devices)
    span_days = 360
    units = Table("units", ("id", "code", "name", "created_at"))
    for uid, code, name, _ in UNITS:
        units.add(uid, code, name, ts(start - timedelta(days=60)))
    stations = Table("stations", ("id", "name", "unit_id", "created_at"))
    stations.add(1, "bench", 1, ts(start - timedelta(days=60)))
    users = Table(
        "users",
        ("id", "username", "display_name", "password_hash", "role", "unit_id", "officer_no", "active", "created_at"),
    )
    for i in range(1, OFFICERS + 1):
        users.add(
            i,
            f"officer{i}",
            f"警员{i}",
            "x",
            "officer",
            1 + i % 4,
            f"{100000 + i}",
            True,
            ts(start - timedelta(days=60)),
        )
    # the cases of each unit, shuffled once and handed out round-robin to the checkouts of that unit
    unit_cases: dict[int, list[int]] = {u: [] for u, *_ in UNITS}
    for c in range(1, sizes.cases + 1):
        unit_cases[1 + c % 4].append(c)
    for lst in unit_cases.values():
        rnd.shuffle(lst)
    handed = dict.fromkeys(unit_cases, 0)
    case_officers: dict[int, list[int]] = {}
    case_opened: dict[int, datetime] = {}

    entries = Table(
        "ledger_entries",
        (
            "id",
            "device_id",
            "unit_id",
            "seq",
            "kind",
            "occurred_at",
            "recorded_at",
            "late",
            "status_after",
            "officer_id",
            "officer_no",
            "officer_name",
            "enforcement_matter",
            "case_number",
            "expected_return_at",
            "clock_offset_s",
            "refers_to_id",
            "override",
        ),
    )
    transfers = Table(
        "transfers",
        (
            "id",
            "station_id",
            "unit_id",
            "device_serial",
            "device",
            "officer_no",
            "officer_name",
            "docked_at",
            "received_at",
            "clock_offset_s",
            "index",
            "rejected",
            "state",
            "files_total",
            "files_done",
            "bytes_total",
            "bytes_done",
            "completed_at",
            "enforcement_matter",
            "case_id",
            "task_recorded_at",
        ),
    )
    recordings = Table(
        "recordings",
        (
            "id",
            "blake3",
            "sha256",
            "size",
            "storage_key",
            "unit_id",
            "station_id",
            "transfer_id",
            "device_serial",
            "officer_no",
            "officer_name",
            "original_path",
            "original_name",
            "name_started_at",
            "name_ended_at",
            "container_started_at",
            "container_ended_at",
            "container_created_at",
            "probe_state",
            "duration_s",
            "codec",
            "width",
            "height",
            "encoder",
            "fixity_state",
            "docked_at",
            "uploaded_at",
            "verified_at",
            "created_at",
            "sm3",
            "fixity_checked_at",
            "block_map_root",
        ),
    )
    # as in service: each recording has its block map (made on receipt), its SM3 and a fixity check
    block_maps = Table(
        "recording_block_maps", ("recording_id", "block_size", "size", "root", "hashes", "source", "made_at")
    )
    links = Table(
        "case_links",
        (
            "id",
            "case_id",
            "recording_id",
            "origin",
            "reason",
            "checkout_entry_id",
            "linked_at",
            "unlinked_at",
            "unlink_reason",
        ),
    )
    entry_id = rec_id = link_id = 0
    # ids in time order, devices interleaved in no particular order, as docks bring them: a device's rows
    # (and a scan batch's) spread over the whole of each table, as they do in service
    for d in range(1, sizes.devices + 1):
        entry_id += 1
        entries.add(
            entry_id,
            d,
            1 + d % 4,
            1,
            "register",
            ts(start - timedelta(days=30)),
            ts(start - timedelta(days=30)),
            False,
            "available",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            False,
        )
    order = list(range(1, sizes.devices + 1))
    still_out: dict[int, int] = {}  # device → the checkout it never came back from
    for k in range(per_device):
        rnd.shuffle(order)
        for d in order:
            serial, unit = f"DSJ{d:06d}", 1 + d % 4
            officer = 4 * ((d * 7 + k) % 249) + d % 4 + 4  # an officer of the device's unit
            officer_no, officer_name = f"{100000 + officer}", f"警员{officer}"
            out = start + timedelta(days=k * span_days // per_device, minutes=d % 300)
            back = out + timedelta(hours=1)
            never_back = k == per_device - 1 and rnd.random() < 0.02
            linked = not never_back and rnd.random() < LINKED_SHARE
            case_id = None
            if linked:
                pool = unit_cases[unit]
                case_id = pool[handed[unit] % len(pool)]
                handed[unit] += 1
                case_officers.setdefault(case_id, [])
                if officer not in case_officers[case_id]:
                    case_officers[case_id].append(officer)
                case_opened.setdefault(case_id, out)
            number = case_number(case_id, start.year) if case_id else None
            entry_id += 1
            checkout_id = entry_id
            offset_at_checkout = 200.0 if rnd.random() < 0.002 else 1.0
            entries.add(
                entry_id,
                d,
                unit,
                2 + 2 * k,
                "checkout",
                ts(out),
                ts(out),
                False,
                "checked_out",
                officer,
                officer_no,
                officer_name,
                "执法检查",
                number,
                ts(out + timedelta(hours=3)),
                offset_at_checkout,
                None,
                False,
            )
            if never_back:
                still_out[d] = checkout_id
                continue
            entry_id += 1
            entries.add(
                entry_id,
                d,
                unit,
                3 + 2 * k,
                "return",
                ts(back),
                ts(back),
                False,
                "available",
                officer,
                officer_no,
                officer_name,
                None,
                None,
                None,
                None,
                checkout_id,
                False,
            )
            late = rnd.random() < 0.01
            docked = back + (timedelta(hours=30) if late else timedelta(minutes=5))
            offset = 200.0 if rnd.random() < 0.002 else 0.5
            tid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            gap = rnd.random() < 0.005
            index = []
            unlink = rnd.random() < 0.01
            for s in range(sizes.segments):
                if gap and s == 4 % sizes.segments and sizes.segments > 1:
                    continue
                began = out + timedelta(minutes=5, seconds=SEGMENT_S * s)
                local = began.astimezone(TZ)
                path = f"DCIM/{local:%Y%m%d}/{serial}_{officer_no}_{local:%Y%m%d%H%M%S}_{s + 1:04d}.MP4"
                size = 150_000_000 + rnd.randrange(1_000_000)
                device_began = began + timedelta(seconds=offset)
                device_ended = device_began + timedelta(seconds=SEGMENT_S)
                index.append({"path": path, "size": size, "mtime": ts(device_ended), "started_at": ts(device_began)})
                rec_id += 1
                encoder = "Lavf60.3.100" if rnd.random() < 0.002 else "ZFY DSJ H.264 V1.0"
                verified = docked + timedelta(minutes=5)
                recordings.add(
                    rec_id,
                    f"blake3:{rec_id:064x}",
                    f"sha256:{rec_id:064x}",
                    size,
                    f"k{rec_id}",
                    unit,
                    1,
                    tid,
                    serial,
                    officer_no,
                    officer_name,
                    path,
                    path.rsplit("/", 1)[1],
                    ts(device_began),
                    ts(device_ended),
                    ts(device_began),
                    ts(device_ended),
                    ts(device_began),
                    "done",
                    float(SEGMENT_S),
                    "h264",
                    1920,
                    1080,
                    encoder,
                    "ok",
                    ts(docked),
                    ts(verified),
                    ts(verified),
                    ts(verified),
                    f"sm3:{rec_id:064x}",
                    ts(verified + timedelta(hours=rec_id % 48)),  # not from rnd: the rest stays as it was
                    f"blake3:{rec_id:064x}",
                )
                block_maps.add(
                    rec_id, 4 << 20, size, f"blake3:{rec_id:064x}", "\\x" + "00" * 32, "receipt", ts(verified)
                )
                if case_id:
                    link_id += 1
                    gone = unlink and s == 0
                    links.add(
                        link_id,
                        case_id,
                        rec_id,
                        "checkout",
                        "领用任务",
                        checkout_id,
                        ts(verified),
                        ts(verified + timedelta(days=2)) if gone else None,
                        "与案件无关" if gone else None,
                    )
            transfers.add(
                tid,
                1,
                unit,
                serial,
                json.dumps({"serial": serial, "family": "zfy"}),
                officer_no,
                officer_name,
                ts(docked),
                ts(docked),
                offset,
                json.dumps(index),
                "[]",
                "done",
                len(index),
                len(index),
                0,
                0,
                ts(docked + timedelta(minutes=6)),
                "执法检查",
                case_id,
                ts(docked),
            )

    cases = Table(
        "cases",
        (
            "id",
            "number",
            "name",
            "enforcement_matter",
            "unit_id",
            "officers",
            "status",
            "opened_on",
            "closed_on",
            "created_via",
            "created_at",
            "updated_at",
        ),
    )
    shares = Table("case_shares", ("id", "case_id", "unit_id", "reason", "shared_at", "shared_by_id"))
    share_id = 0
    for c in range(1, sizes.cases + 1):
        unit = 1 + c % 4
        opened = case_opened.get(c, start + timedelta(days=c % span_days))
        ids = case_officers.get(c) or [4 * (c % 249) + c % 4 + 4]
        if len(ids) == 1:
            ids = [*ids, 4 * ((c * 3) % 249) + c % 4 + 4]
        officers = [{"officer_no": f"{100000 + o}", "name": f"警员{o}"} for o in ids[:3]]
        closed = rnd.random() < 0.2
        opened_on = opened.astimezone(TZ).date()
        cases.add(
            c,
            case_number(c, start.year),
            f"案件{c}（{UNITS[unit - 1][2]}）",
            "执法检查",
            unit,
            json.dumps(officers, ensure_ascii=False),
            "closed" if closed else "open",
            opened_on,
            opened_on + timedelta(days=30) if closed else None,
            "checkout" if c in case_opened else "manual",
            ts(opened),
            ts(opened),
        )
        if rnd.random() < 0.02:
            share_id += 1
            shares.add(share_id, c, 1 + (unit % 4), "联合办案", ts(opened + timedelta(days=1)), 1)
    # in foreign-key order
    # each device as its entries leave it: back and available, or still out on its last checkout
    devices = Table(
        "devices",
        ("id", "serial", "model", "family", "unit_id", "status", "open_checkout_id", "version", "created_at"),
    )
    for d in range(1, sizes.devices + 1):
        out_on = still_out.get(d)
        devices.add(
            d,
            f"DSJ{d:06d}",
            "DSJ-V9",
            "zfy",
            1 + d % 4,
            "available" if out_on is None else "checked_out",
            out_on,
            per_device * 2 + 1,
            ts(start - timedelta(days=60)),
        )
    return [units, stations, users, devices, entries, transfers, recordings, block_maps, cases, links, shares], loaded


# --- the database --------------------------------------------------------------------------------------


def admin_conn():  # type: ignore[no-untyped-def]
    from tests.support.databases import _admin_conn

    return _admin_conn()


def recreate_database(name: str) -> str:
    from evidence_server.dbadmin import upgrade
    from tests.support.databases import pg_url

    drop_database(name)
    with admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url(name)
    upgrade(url)
    return url


def drop_database(name: str) -> None:
    with admin_conn() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def load(url: str, sizes: Sizes, start: datetime) -> Loaded:
    from sqlalchemy import create_engine, text

    t0 = time.perf_counter()
    tables, loaded = generate(sizes, start)
    generated = time.perf_counter() - t0
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            for table in tables:
                loaded.counts[table.name] = table.copy_into(raw)
            for table in (
                "units",
                "users",
                "devices",
                "ledger_entries",
                "recordings",
                "stations",
                "cases",
                "case_links",
                "case_shares",
            ):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                    )
                )  # constant names
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    loaded.seconds = time.perf_counter() - t0
    print(
        f"generated in {generated:.1f} s; loaded with COPY (and VACUUM ANALYZE) in {loaded.seconds:.1f} s: "
        f"{loaded.counts}",
        flush=True,
    )
    return loaded


def make_users(url: str) -> None:
    """The people who log in: a case handler of U1, legal affairs, a sysadmin (real password hashes)."""
    from evidence_server.accounts import service as accounts
    from evidence_server.accounts.models import Unit
    from evidence_server.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        unit = session.get(Unit, 1)
        assert unit is not None
        for username, role in (("handler", "case_handler"), ("legal", "legal_affairs"), ("admin", "sysadmin")):
            accounts.create_user(session, username=username, password=PASSWORD, role=role, unit=unit)
        session.commit()
    engine.dispose()


def numbers_from_db(url: str, rnd: random.Random) -> dict[str, list[str]]:
    """Case numbers to look up, as people type them: those a case handler of U1 may see (the unit's
    cases and those shared with it), and any case (for legal affairs)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        mine = (
            conn.execute(
                text(
                    "SELECT number FROM cases WHERE unit_id = 1 UNION SELECT c.number FROM cases c "
                    "JOIN case_shares s ON s.case_id = c.id WHERE s.unit_id = 1 AND s.revoked_at IS NULL"
                )
            )
            .scalars()
            .all()
        )
        every = conn.execute(text("SELECT number FROM cases")).scalars().all()
    engine.dispose()
    return {"handler": [typed(n, rnd) for n in sorted(mine)], "all": [typed(n, rnd) for n in sorted(every)]}


# --- the measurements ----------------------------------------------------------------------------------


def scan(url: str, data_dir: Path) -> tuple[float, dict[str, Any]]:
    """The full scan exactly as the scheduled job (``compliance.full_scan``) runs it."""
    from evidence_server.compliance.tasks import full_scan
    from evidence_server.config import Settings
    from evidence_server.context import ServerContext

    ctx = ServerContext(Settings(database_url=url, data_dir=data_dir, environment="test"))
    try:
        t0 = time.perf_counter()
        counts = full_scan(ctx)
        return time.perf_counter() - t0, counts
    finally:
        ctx.close()


def incremental_scan(url: str, data_dir: Path, devices: int, rnd: random.Random) -> tuple[float, int]:
    """A day's docks touch about ``devices`` recorders (200 recorders × 20 segments ≈ 4,000 recordings):
    the incremental scan after them judges those devices whole, as ``compliance.scan_devices`` does."""
    from sqlalchemy import select

    from evidence_server.compliance.service import scan_devices
    from evidence_server.config import Settings
    from evidence_server.context import ServerContext
    from evidence_server.ledger.models import Device

    ctx = ServerContext(Settings(database_url=url, data_dir=data_dir, environment="test"))
    try:
        with ctx.sessionmaker() as session:
            serials = list(session.scalars(select(Device.serial).order_by(Device.serial)))
            chosen = rnd.sample(serials, min(devices, len(serials)))
            t0 = time.perf_counter()
            result = scan_devices(session, ctx.settings, chosen)
            session.commit()
            return time.perf_counter() - t0, result.devices
    finally:
        ctx.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def timed_gets(client: Any, paths: Iterable[str], check: Any = None) -> list[float]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        r = client.get(path)
        took = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
        if check is not None:
            check(r.json())
        out.append(took * 1000)
    return out


def lookups(client: Any, numbers: Sequence[str], n: int, rnd: random.Random) -> tuple[list[float], int]:
    """``n`` lookups of random case numbers (after a short warm-up); the latencies and the recordings seen."""
    from urllib.parse import quote

    found = 0

    def check(body: dict[str, Any]) -> None:
        nonlocal found
        assert body["case"] is not None, body
        found += len(body["items"])

    timed_gets(client, (f"/api/v1/search?case_number={quote(rnd.choice(numbers))}" for _ in range(50)))
    times = timed_gets(client, (f"/api/v1/search?case_number={quote(rnd.choice(numbers))}" for _ in range(n)), check)
    return times, found


#: The pages people open every day, as the people who open them (HTML pages with ``Accept: text/html``):
#: what a list, a home page or a name search costs as the recordings grow, not only a case lookup.
PAGES = (
    ("handler", "home", "/"),
    ("handler", "recordings", "/recordings"),
    ("handler", "recordings_page_50", "/recordings?page=50"),
    ("handler", "api_list", "/api/v1/recordings?limit=50"),
    ("handler", "file_name_search", "/recordings?file_name=0930"),
    ("handler", "officer_search", "/recordings?officer=100456"),
    # a column header clicked: every order a list offers has its index (migrations 0026, 0028)
    ("handler", "sorted_by_size", "/recordings?sort=-size"),
    ("handler", "sorted_by_name", "/recordings?sort=name"),
    ("handler", "sorted_by_duration", "/recordings?sort=-duration"),
    ("handler", "sorted_oldest_first", "/recordings?sort=started"),
    ("handler", "sorted_by_officer", "/recordings?sort=officer"),
    ("legal", "recordings_all_units", "/recordings"),
)


def pages(base: str, n: int) -> dict[str, Any]:
    """Median and slowest of ``n`` views of each of ``PAGES`` (after one unmeasured view)."""
    out: dict[str, Any] = {}
    clients = {who: login(base, who) for who in {who for who, _, _ in PAGES}}
    try:
        for who, name, path in PAGES:
            clients[who].headers["Accept"] = "text/html"
            times = timed_gets(clients[who], [path] * (n + 1))
            out[f"page_{who}_{name}_ms"] = round(statistics.median(times[1:]), 1)
            out[f"page_{who}_{name}_max_ms"] = round(max(times[1:]), 1)
            print(f"  {who} {path}: median {out[f'page_{who}_{name}_ms']} ms", flush=True)
    finally:
        for c in clients.values():
            c.close()
    return out


def job_selections(url: str, runs: int = 3) -> dict[str, Any]:
    """Each scheduled job's choice of work, as the job states it (median of ``runs``): the fixity sweep's
    next recordings to check, and the SM3, block-map and media-profile backfills finding none left."""
    from sqlalchemy import create_engine

    from evidence_server.custody.blockmaps import unmapped
    from evidence_server.fixity.service import due_for_check, without_sm3
    from evidence_server.media.probe import unprofiled

    engine = create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for name, stmt in (
                ("fixity_due", due_for_check(500)),
                ("sm3_missing", without_sm3(200)),
                ("block_maps_missing", unmapped(50)),
                ("profiles_missing", unprofiled(2000)),
            ):
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    conn.execute(stmt).all()
                    times.append((time.perf_counter() - t0) * 1000)
                out[f"job_{name}_ms"] = round(statistics.median(times), 1)
                print(f"job {name}: {' / '.join(f'{t:.1f}' for t in times)} ms", flush=True)
    finally:
        engine.dispose()
    return out


METRICS_TOKEN = "bench-metrics-token-0123456789"


def scrapes(base: str, n: int = 5) -> dict[str, Any]:
    """``/metrics`` as Prometheus scrapes it: the first scrape of a process reads the totals over every
    recording and upload; the next ones, within ``CUSTODIA_METRICS_TOTALS_MAX_AGE_S``, do not."""
    import httpx

    times = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=120) as c:
        for _ in range(n + 1):
            t0 = time.perf_counter()
            r = c.get("/metrics")
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            assert "custodia_metrics_totals_age_seconds" in r.text
    return {"metrics_first_scrape_ms": round(times[0], 1), "metrics_scrape_ms": round(statistics.median(times[1:]), 1)}


def login(base: str, username: str) -> Any:
    import httpx

    r = httpx.post(base + "/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=60)


def start_of_data() -> datetime:
    """The first checkout: a year of checkouts ends a few days before today (the dashboard's default period)."""
    today = datetime.now(TZ).date()
    return datetime.combine(today - timedelta(days=368), dtime(9, 0), TZ)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load (unless ``--reuse``), scan, serve, measure: the figures, unprefixed."""
    from tests.support.databases import pg_url
    from tests.support.live import LiveServer, free_port

    sizes = Sizes(args.recordings, args.checkouts, args.cases, args.devices)
    rnd = random.Random(sizes.seed + 1)
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="custodia-bench-p5-"))
    if args.reuse:
        from evidence_server.dbadmin import upgrade

        url = pg_url(args.db)
        upgrade(url)  # a database kept by an earlier version: its schema brought up to this one's
    else:
        t0 = time.perf_counter()
        url = recreate_database(args.db)
        print(f"created and migrated {args.db} in {time.perf_counter() - t0:.1f} s", flush=True)
        loaded = load(url, sizes, start_of_data())
        make_users(url)
        results["load_s"] = round(loaded.seconds, 1)
        results.update(
            {
                f"rows_{k}": v
                for k, v in loaded.counts.items()
                if k in ("recordings", "ledger_entries", "transfers", "cases", "case_links")
            }
        )
    numbers = numbers_from_db(url, rnd)
    try:
        if not args.skip_scan:
            for label in () if args.skip_full_scan else ("compliance_scan_s", "compliance_scan_again_s"):
                load_avg = os.getloadavg()[0]
                took, counts = scan(url, work)
                results[label] = round(took, 1)
                print(f"{label}: {took:.1f} s (load average {load_avg:.1f} before)  {counts}", flush=True)
            load_avg = os.getloadavg()[0]
            took, devices = incremental_scan(url, work, args.day_devices, rnd)
            results["incremental_scan_s"] = round(took, 2)
            results["incremental_scan_devices"] = devices
            print(f"incremental scan of {devices} devices (a day's docks): {took:.2f} s (load {load_avg:.1f})")
        server = LiveServer(
            data_dir=work,
            database_url=url,
            mode="process",
            port=free_port(),
            env={"CUSTODIA_COMPLIANCE_INCREMENTAL": "false", "CUSTODIA_METRICS_TOKEN": METRICS_TOKEN},
        )
        server.start()
        try:
            results["load_avg_at_lookups"] = round(os.getloadavg()[0], 1)
            with login(server.url, "handler") as handler:
                times, seen = lookups(handler, numbers["handler"], args.lookups, rnd)
            results.update(
                {
                    "case_lookup_requests": len(times),
                    "case_lookup_p50_ms": round(percentile(times, 50), 1),
                    "case_lookup_p95_ms": round(percentile(times, 95), 1),
                    "case_lookup_p99_ms": round(percentile(times, 99), 1),
                    "case_lookup_recordings_per_case": round(seen / len(times), 1),
                }
            )
            with login(server.url, "legal") as legal:
                times, _ = lookups(legal, numbers["all"], args.lookups, rnd)
                results.update(
                    {
                        "case_lookup_all_units_p50_ms": round(percentile(times, 50), 1),
                        "case_lookup_all_units_p95_ms": round(percentile(times, 95), 1),
                        "case_lookup_all_units_p99_ms": round(percentile(times, 99), 1),
                    }
                )
                timed_gets(legal, ["/api/v1/compliance/dashboard"] * 2)  # warm-up
                times = timed_gets(
                    legal,
                    ["/api/v1/compliance/dashboard"] * args.dashboards,
                    lambda body: body["total"] > 0 or print("warning: the dashboard counts no flags"),
                )
                results.update(
                    {
                        "dashboard_requests": len(times),
                        "dashboard_p50_ms": round(percentile(times, 50), 1),
                        "dashboard_p95_ms": round(percentile(times, 95), 1),
                    }
                )
            results.update(pages(server.url, args.pages))
            results.update(scrapes(server.url))
            results.update(job_selections(url))
        finally:
            server.stop()
    finally:
        if not args.keep and not args.reuse:
            drop_database(args.db)
        shutil.rmtree(work, ignore_errors=True)
    return results


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="bench_queries", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--recordings", type=int, default=1_000_000)
    ap.add_argument("--checkouts", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=50_000)
    ap.add_argument("--devices", type=int, default=0, help="0: one per 20 checkouts, at most 5,000")
    ap.add_argument("--lookups", type=int, default=1000, help="case-number lookups timed (per user)")
    ap.add_argument("--day-devices", type=int, default=200, help="recorders a day's docks touch (incremental scan)")
    ap.add_argument("--dashboards", type=int, default=20, help="dashboard requests timed")
    ap.add_argument("--pages", type=int, default=5, help="views timed of each page people open (PAGES)")
    ap.add_argument("--db", default=DB_NAME, help="the database (dropped and recreated)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards (for --reuse)")
    ap.add_argument("--reuse", action="store_true", help="measure the database an earlier --keep run loaded")
    ap.add_argument("--skip-scan", action="store_true", help="do not run the compliance scan")
    ap.add_argument(
        "--skip-full-scan", action="store_true", help="only the incremental scan (on a database already scanned)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    return ap


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """The figures as a flat dict (keys prefixed ``p5_``), for a runner that merges several benchmarks."""
    return {f"p5_{k}": v for k, v in run(parser().parse_args(argv)).items()}


#: (label, figure(s), target figure: the figure must be at most this)
ROWS: tuple[tuple[str, str | tuple[str, ...], float | None], ...] = (
    ("lookup by case number p95, case handler (ms)", "p5_case_lookup_p95_ms", 20.0),
    ("  p50 / p99 (ms)", ("p5_case_lookup_p50_ms", "p5_case_lookup_p99_ms"), None),
    ("lookup by case number p95, legal affairs (ms)", "p5_case_lookup_all_units_p95_ms", 20.0),
    ("  p50 / p99 (ms)", ("p5_case_lookup_all_units_p50_ms", "p5_case_lookup_all_units_p99_ms"), None),
    ("full compliance scan, first (s)", "p5_compliance_scan_s", 60.0),
    ("full compliance scan, again (s)", "p5_compliance_scan_again_s", 60.0),
    ("incremental scan after a day's docks, 200 recorders (s)", "p5_incremental_scan_s", 10.0),
    ("dashboard aggregates p95 (ms)", "p5_dashboard_p95_ms", 500.0),
    ("  p50 (ms)", "p5_dashboard_p50_ms", None),
    ("case handler's home page, median (ms)", "p5_page_handler_home_ms", None),
    (
        "case handler's recordings, page 1 / 50 (ms)",
        ("p5_page_handler_recordings_ms", "p5_page_handler_recordings_page_50_ms"),
        None,
    ),
    (
        "case handler's API list / file-name search (ms)",
        ("p5_page_handler_api_list_ms", "p5_page_handler_file_name_search_ms"),
        None,
    ),
    ("case handler's officer search (ms)", "p5_page_handler_officer_search_ms", None),
    (
        "handler sorted: size / name / duration / oldest / officer (ms)",
        (
            "p5_page_handler_sorted_by_size_ms",
            "p5_page_handler_sorted_by_name_ms",
            "p5_page_handler_sorted_by_duration_ms",
            "p5_page_handler_sorted_oldest_first_ms",
            "p5_page_handler_sorted_by_officer_ms",
        ),
        None,
    ),
    ("legal affairs' recordings, all units (ms)", "p5_page_legal_recordings_all_units_ms", None),
    ("/metrics: first scrape / the next, median (ms)", ("p5_metrics_first_scrape_ms", "p5_metrics_scrape_ms"), None),
    (
        "jobs finding work: fixity / SM3 / maps / profiles (ms)",
        ("p5_job_fixity_due_ms", "p5_job_sm3_missing_ms", "p5_job_block_maps_missing_ms", "p5_job_profiles_missing_ms"),
        None,
    ),
    ("load with COPY (s)", "p5_load_s", None),
    ("load average at the lookups", "p5_load_avg_at_lookups", None),
)


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    """Each targeted figure measured: met or not."""
    return {
        key: results[key] <= target
        for _, key, target in ROWS
        if target is not None and isinstance(key, str) and results.get(key) is not None
    }


def table(results: dict[str, Any]) -> str:
    met = verdicts(results)
    lines = [f"{'figure':<48}{'value':>14}{'target':>10}{'met':>6}", "-" * 78]
    for label, key, target in ROWS:
        value = " / ".join(str(results.get(k)) for k in key) if isinstance(key, tuple) else str(results.get(key))
        ok = "" if not isinstance(key, str) or key not in met else ("yes" if met[key] else "no")
        lines.append(f"{label:<48}{value:>14}{f'<= {target:g}' if target else '':>10}{ok:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    results = {f"p5_{k}": v for k, v in run(args).items()}
    print()
    print(table(results))
    if args.json:
        doc = {
            "results": results,
            "met": verdicts(results),
            "targets": {key: f"<= {target:g}" for _, key, target in ROWS if target is not None},
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
