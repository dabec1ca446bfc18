"""Concurrency benchmarks of issue 10: many recorders docked at once (P4), API metadata reads (P6).

**P4.** One station agent (``custodia agent run`` watching a dock root) and one server process
(SQLite). A recorder is docked alone (its volume renamed into the dock root) and timed from the dock
to its transfer being ``done`` in the station's journal, ``--single-runs`` times with fresh
recorders (the best run is the baseline); then ``--devices`` recorders with distinct serials and
bytes are docked at once and each is timed the same way. Figures: the aggregate throughput of the
crowd against the lone recorder's (target ≥ 0.8×), the slowest recorder's time against the
fastest's (target ≤ 1.5×) and failed transfers (target 0).

**P6.** The server with two worker processes (``custodia server --workers 2``; PostgreSQL when it
answers on 127.0.0.1:5432, else SQLite), a few hundred recordings' metadata in its database (each
with a real ffprobe result), and ``wrk`` (Debian package) in another process reading
``GET /api/v1/recordings?limit=20`` and ``GET /api/v1/recordings/{id}`` (an audited view) in turn
for ``--seconds`` with ``--connections`` open connections (an httpx client in a subprocess when wrk
is missing). Figures: requests per second (target ≥ 500), latency percentiles, non-2xx answers
(target 0); and, for context on a shared machine, what the same server gives ``/healthz`` right
after (``p6_healthz_req_per_s``, ``p6_reads_vs_healthz``). Requests per second drifted by a third
between runs on this machine kind, so the cost of a read is also given as CPU, split by who spends it:
milliseconds of the server's processes, of PostgreSQL's (with the backends that ended) and of the load
generator per read
(``p6_cpu_ms_per_read_*``), and the connections PostgreSQL saw closed per 1000 reads
(``p6_db_connections_per_1000_reads``: a pool smaller than the load opens and closes them).

Not part of the test command. Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_concurrency                 # both, full size
    .venv/bin/python -m tests.benchmarks.bench_concurrency --only p4 --devices 4 --device-mib 32
    .venv/bin/python -m tests.benchmarks.bench_concurrency --only p6 --seconds 5 --json p6.json

Prints a table (figure, value, target, met); ``--json PATH`` writes the flat figures as JSON.
``collect(argv)`` returns the same figures for an umbrella runner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.live import LiveServer, free_port, wait_ready

MiB = 1024**2
REPO = Path(__file__).resolve().parents[2]
CUSTODIA = str(Path(sys.executable).parent / "custodia")
WRK = shutil.which("wrk")
#: Dock states after which the station has nothing left to do (ingest_agent.journal.TransferState.FINAL).
FINAL = ("done", "failed", "interrupted")

#: (figure, target as text, predicate) for the table; figures without a target are shown as info.
TARGETS: dict[str, tuple[str, Any]] = {
    "p4_aggregate_vs_single": ("≥ 0.8", lambda v: v >= 0.8),
    "p4_fairness_slowest_vs_fastest": ("≤ 1.5", lambda v: v <= 1.5),
    "p4_failed_transfers": ("0", lambda v: v == 0),
    "p6_req_per_s": ("≥ 500", lambda v: v >= 500),
    "p6_non_2xx": ("0", lambda v: v == 0),
}


# --- databases ----------------------------------------------------------------------------------


@contextmanager
def database(kind: str, work: Path, tag: str) -> Iterator[str]:
    """A fresh, migrated database: an SQLite file under ``work``, or a new PostgreSQL database."""
    from evidence_server.dbadmin import upgrade

    if kind == "sqlite":
        work.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{work / 'custodia.sqlite3'}"
        upgrade(url)
        yield url
        return
    from tests.support.databases import _admin_conn, pg_url

    name = f"custodia_bench_{tag}_{uuid.uuid4().hex[:8]}"
    with _admin_conn() as conn:  # type: ignore[no-untyped-call]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(pg_url(name))
        yield pg_url(name)
    finally:
        with _admin_conn() as conn:  # type: ignore[no-untyped-call]
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


# --- P4: many recorders docked at once ----------------------------------------------------------


@dataclass
class Device:
    serial: str
    volume: Path  # where it was made; docking renames it under the dock root
    bytes: int
    files: int


def make_device(root: Path, serial: str, segments: int, segment_bytes: int) -> Device:
    """A recorder volume of ``segments`` real H.264 files of ~``segment_bytes`` each.

    The simulator stream-copies one incompressible clip into each segment and writes the serial and
    the segment's start into the container, so no two files of the whole run share their bytes.
    """
    from device_drivers.simulator import simulate_device

    v = simulate_device(
        root, serial=serial, officer_no=serial[-6:], officer_name=None, segments=segments, big_bytes=segment_bytes
    )
    sizes = [v.file(s).stat().st_size for s in v.written]
    return Device(serial, v.root, sum(sizes), len(sizes))


def agent_env(server_url: str, data_dir: Path, dock_root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CUSTODIA_AGENT_SERVER_URL": server_url,
        "CUSTODIA_AGENT_DATA_DIR": str(data_dir),
        "CUSTODIA_AGENT_DOCK_ROOTS": str(dock_root),
        "CUSTODIA_AGENT_STABILITY_SECONDS": "0.2",
        "CUSTODIA_AGENT_POLL_INTERVAL": "0.2",
        "CUSTODIA_AGENT_DEBOUNCE_SECONDS": "0.2",
        "CUSTODIA_AGENT_SPOOL_RESERVE_BYTES": str(64 * MiB),
    }


class JournalWatch:
    """Reads the running agent's journal (read-only) for the state of each docking."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def docks(self) -> dict[str, tuple[str, str, str | None]]:
        """serial -> (state, updated_at, error) of its latest docking."""
        if not self.path.exists():
            return {}
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT device_serial, state, updated_at, error FROM docks ORDER BY docked_at").fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return {}
        finally:
            db.close()
        return {serial: (state, updated, error) for serial, state, updated, error in rows}

    def file_states(self) -> dict[str, int]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return dict(db.execute("SELECT state, count(*) FROM files GROUP BY state").fetchall())
        finally:
            db.close()


def wall(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def dock_and_wait(
    devices: list[Device], dock_root: Path, journal: JournalWatch, timeout: float, agent: subprocess.Popen[bytes]
) -> tuple[float, dict[str, float], dict[str, str]]:
    """Rename every volume into the dock root in one go; wait until each docking is final.

    Returns (dock wall time, serial -> seconds from the dock to its final state, serial -> state).
    """
    t0 = time.time()
    for d in devices:
        os.rename(d.volume, dock_root / d.volume.name)
    wanted = {d.serial for d in devices}
    deadline = time.monotonic() + timeout
    while True:
        docks = journal.docks()
        final = {s: v for s, v in docks.items() if s in wanted and v[0] in FINAL}
        if len(final) == len(wanted):
            break
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited with {agent.returncode}")
        if time.monotonic() > deadline:
            late = sorted(wanted - set(final))
            print(f"timed out after {timeout:.0f} s; not done: {late}", flush=True)
            break
        time.sleep(0.1)
    times = {s: wall(v[1]) - t0 for s, v in final.items()}
    states = {s: docks.get(s, ("missing", "", None))[0] for s in wanted}
    return t0, times, states


def wait_heartbeat(server: LiveServer, name: str, agent: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """The agent heartbeats once it watches its docks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited with {agent.returncode}")
        stations = httpx.get(server.url + "/api/v1/stations", headers=server.admin_headers).json()
        if any(s["name"] == name and s["last_seen_at"] for s in stations):
            return
        time.sleep(0.1)
    raise SystemExit("the agent never sent a heartbeat")


def server_counts(server: LiveServer) -> int:
    r = httpx.get(server.url + "/api/v1/recordings?limit=1", headers=server.admin_headers)
    r.raise_for_status()
    return int(r.json()["total"])


def run_p4(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    segments = max(1, args.segments)
    segment_bytes = max(1, int(args.device_mib * MiB) // segments)
    made = work / "made"
    dock_root = work / "dock"
    dock_root.mkdir(parents=True)
    lone = max(1, args.single_runs)
    print(
        f"P4: making {args.devices + lone} recorders of {segments} × {segment_bytes / MiB:.1f} MiB with ffmpeg …",
        flush=True,
    )
    t = time.perf_counter()
    serials = [f"P4S{900000 + i}" for i in range(args.devices + lone)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        devices = list(pool.map(lambda s: make_device(made, s, segments, segment_bytes), serials))
    print(f"    made in {time.perf_counter() - t:.1f} s", flush=True)
    singles, crowd = devices[:lone], devices[lone:]

    with database(args.p4_db, work / "server", "p4") as url:
        server = LiveServer(data_dir=work / "server", database_url=url, mode="process", port=free_port())
        server.bootstrap()
        server.start()
        agent: subprocess.Popen[bytes] | None = None
        try:
            env = agent_env(server.url, work / "agent", dock_root)
            subprocess.run(
                [CUSTODIA, "agent", "enrol", server.enrolment_code("bench-p4"), "--name", "bench-p4"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            log = open(work / "agent.log", "wb")  # noqa: SIM115
            agent = subprocess.Popen(
                [CUSTODIA, "agent", "run"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO)
            )
            log.close()
            wait_heartbeat(server, "bench-p4", agent)
            journal = JournalWatch(work / "agent" / "journal.sqlite3")
            if args.pids:
                print(f"    server pid {server._proc.pid if server._proc else '?'}, agent pid {agent.pid}", flush=True)

            single_rates: list[float] = []
            st_single: dict[str, str] = {}
            for single in singles:  # one recorder alone, docked after the last one is done
                print(f"P4: docking 1 recorder ({single.bytes / MiB:.0f} MiB) …", flush=True)
                os.sync()
                _, t_single, states = dock_and_wait([single], dock_root, journal, args.timeout, agent)
                st_single.update(states)
                single_s = t_single.get(single.serial, float("nan"))
                single_rates.append(single.bytes / MiB / single_s)
                print(f"    done in {single_s:.2f} s ({single_rates[-1]:.1f} MiB/s)", flush=True)

            total = sum(d.bytes for d in crowd)
            print(f"P4: docking {len(crowd)} recorders at once ({total / MiB:.0f} MiB) …", flush=True)
            os.sync()
            _, t_crowd, st_crowd = dock_and_wait(crowd, dock_root, journal, args.timeout, agent)
            file_states = journal.file_states()
            recordings = server_counts(server)
        finally:
            if agent is not None and agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                try:
                    agent.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    agent.wait()
            server.stop()

    durations = sorted(t_crowd.values())
    failed = sum(1 for s in [*st_single.values(), *st_crowd.values()] if s != "done")
    expected_files = sum(d.files for d in devices)
    single_rate = max(single_rates)  # the best lone run: the stricter baseline for the ratio
    crowd_s = max(durations) if len(durations) == len(crowd) else float("nan")
    aggregate = total / MiB / crowd_s
    if recordings != expected_files:
        print(f"    warning: the server holds {recordings} recordings, expected {expected_files}", flush=True)
    return {
        "p4_db": args.p4_db,
        "p4_devices": len(crowd),
        "p4_device_bytes": singles[0].bytes,
        "p4_files_per_device": singles[0].files,
        "p4_single_runs_mib_s": " ".join(f"{r:.1f}" for r in single_rates),
        "p4_single_mib_s": round(single_rate, 1),
        "p4_crowd_bytes": total,
        "p4_crowd_seconds": round(crowd_s, 2),
        "p4_aggregate_mib_s": round(aggregate, 1),
        "p4_aggregate_vs_single": round(aggregate / single_rate, 2),
        "p4_fastest_device_s": round(durations[0], 2) if durations else None,
        "p4_median_device_s": round(durations[len(durations) // 2], 2) if durations else None,
        "p4_slowest_device_s": round(durations[-1], 2) if durations else None,
        "p4_fairness_slowest_vs_fastest": round(durations[-1] / durations[0], 2) if durations else float("inf"),
        "p4_failed_transfers": failed,
        "p4_failed_files": sum(n for s, n in file_states.items() if s not in ("receipted", "wiped", "held")),
        "p4_server_recordings": recordings,
    }


# --- P6: API metadata reads -----------------------------------------------------------------------


def real_probe(work: Path) -> dict[str, Any]:
    """What ffprobe says about one simulated segment, as the server keeps it (``Recording.probe``)."""
    import ffmpeg

    from device_drivers.simulator import simulate_device

    v = simulate_device(work / "probe", serial="P6PROBE", segments=1)
    probe = ffmpeg.probe(str(v.file(v.written[0])))
    shutil.rmtree(work / "probe", ignore_errors=True)
    return {"format": probe.get("format"), "streams": probe.get("streams")}


def seed_recordings(settings: Any, n: int, probe: dict[str, Any]) -> list[int]:
    """A station, one transfer per 20 recordings and ``n`` recordings' metadata (with a real ffprobe
    result each, as the server stores it), inserted directly."""
    from evidence_server.context import ServerContext
    from evidence_server.recordings.models import Recording
    from evidence_server.stations.models import Station
    from evidence_server.transfers.models import Transfer

    ctx = ServerContext(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with ctx.sessionmaker() as s:
            station = Station(name="bench-p6", unit_id=1)
            s.add(station)
            s.flush()
            for t in range(0, n, 20):
                serial = f"P6S{100000 + t // 20}"
                docked = now - timedelta(hours=n - t)
                tid = str(uuid.uuid4())
                s.add(
                    Transfer(
                        id=tid,
                        station_id=station.id,
                        unit_id=1,
                        device_serial=serial,
                        device={"serial": serial, "family": "folder", "model": None, "volume_label": None},
                        officer_no=serial[-6:],
                        docked_at=docked,
                        index=[],
                        state="done",
                    )
                )
                s.flush()
                for i in range(t, min(t + 20, n)):
                    began = docked - timedelta(minutes=20 - (i - t))
                    digest = f"{i:064x}"
                    name = f"{serial}_{serial[-6:]}_{began:%Y%m%d%H%M%S}_{i - t + 1:04d}.MP4"
                    s.add(
                        Recording(
                            blake3=f"blake3:{digest}",
                            sha256=f"sha256:{digest}",
                            size=32 * MiB + i,
                            storage_key=f"blake3/{digest[:2]}/{digest}",
                            unit_id=1,
                            station_id=station.id,
                            transfer_id=tid,
                            device_serial=serial,
                            officer_no=serial[-6:],
                            officer_name="测试警员",
                            original_path=f"DCIM/{began:%Y%m%d}/{name}",
                            original_name=name,
                            device_mtime=began,
                            name_started_at=began,
                            name_ended_at=began + timedelta(minutes=1),
                            container_started_at=began,
                            container_ended_at=began + timedelta(minutes=1),
                            probe_state="done",
                            duration_s=60.0,
                            codec="h264",
                            width=1920,
                            height=1080,
                            frame_rate=25.0,
                            container_format="mov,mp4,m4a,3gp,3g2,mj2",
                            container_created_at=began,
                            encoder="ZFY-SIM DSJ H.264 V1.0",
                            probe=probe,
                            fixity_state="ok",
                            fixity_checked_at=now,
                            docked_at=docked,
                            copied_at=docked,
                            uploaded_at=docked,
                            verified_at=docked,
                        )
                    )
            s.commit()
            from sqlalchemy import select

            return list(s.scalars(select(Recording.id).order_by(Recording.id)))
    finally:
        ctx.close()


WRK_SCRIPT = r"""
-- GET /api/v1/recordings?limit=20 and GET /api/v1/recordings/{id} in turn, ids at random
local token = os.getenv("P6_TOKEN")
local ids = {}
for id in string.gmatch(os.getenv("P6_IDS"), "%d+") do ids[#ids + 1] = id end
local mix = os.getenv("P6_MIX")
local n = 0
request = function()
  n = n + 1
  local path
  if mix == "health" then path = "/healthz"
  elseif mix == "list" or (mix == "both" and n % 2 == 0) then path = "/api/v1/recordings?limit=20"
  else path = "/api/v1/recordings/" .. ids[math.random(#ids)] end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("P6JSON " .. string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def drive_wrk(
    url: str, token: str, ids: list[int], seconds: float, connections: int, threads: int, mix: str
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    try:
        env = {**os.environ, "P6_TOKEN": token, "P6_IDS": ",".join(map(str, ids)), "P6_MIX": mix}
        out = subprocess.run(
            [
                WRK or "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{seconds:.0f}s",
                "--timeout",
                "10s",
                "-s",
                script,
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("P6JSON "))
    data = json.loads(line.removeprefix("P6JSON "))
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    return {
        "requests": data["requests"],
        "seconds": data["duration_us"] / 1e6,
        "non_2xx": data["non_2xx"],
        "errors": errors,
        "p50_ms": data["p50_us"] / 1e3,
        "p95_ms": data["p95_us"] / 1e3,
        "p99_ms": data["p99_us"] / 1e3,
        "max_ms": data["max_us"] / 1e3,
    }


async def _httpx_client(
    url: str, token: str, ids: list[int], seconds: float, connections: int, mix: str
) -> dict[str, Any]:
    import random

    latencies: list[float] = []
    non_2xx = errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=10
    ) as client:
        start = time.perf_counter()
        end = start + seconds

        async def worker(k: int) -> None:
            nonlocal non_2xx, errors
            n = k
            while time.perf_counter() < end:
                n += 1
                listing = mix == "list" or (mix == "both" and n % 2 == 0)
                path = "/api/v1/recordings?limit=20" if listing else f"/api/v1/recordings/{random.choice(ids)}"
                path = "/healthz" if mix == "health" else path
                t = time.perf_counter()
                try:
                    r = await client.get(path)
                    if not 200 <= r.status_code < 300:
                        non_2xx += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3 if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "non_2xx": non_2xx,
        "errors": errors,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": pct(100),
    }


def drive_httpx(url: str, token: str, ids: list[int], seconds: float, connections: int, mix: str) -> dict[str, Any]:
    """The same load from an httpx client in a child process (when wrk is not installed)."""
    spec = json.dumps(
        {"url": url, "token": token, "ids": ids, "seconds": seconds, "connections": connections, "mix": mix}
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_concurrency", "--p6-client", spec],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(REPO),
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def run_p6(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if args.p6_db == "auto":
        from tests.support.databases import PG_HOST, PG_PORT
        from tests.support.services import port_open

        args.p6_db = "postgres" if port_open(PG_HOST, PG_PORT) else "sqlite"
    with database(args.p6_db, work / "p6", "p6") as url:
        server = LiveServer(data_dir=work / "p6", database_url=url, mode="process")
        server.bootstrap()
        ids = seed_recordings(server.settings(), args.recordings, real_probe(work))  # type: ignore[no-untyped-call]
        env = {**os.environ, **server.settings_env()}
        log = open(work / "p6-server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [CUSTODIA, "server", "--host", "127.0.0.1", "--port", str(server.port), "--workers", "2"],
            env=env,
            cwd=str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_ready(server.url, proc=proc)
            token = server.login()
            for path in ("/api/v1/recordings?limit=20", f"/api/v1/recordings/{ids[0]}"):  # warm both processes
                for _ in range(20):
                    httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            if args.pids:
                print(f"    server pid {proc.pid}", flush=True)
            tool = "wrk" if WRK and not args.httpx else "httpx"
            print(
                f"P6: {tool}, {args.connections} connections, {args.seconds:.0f} s, {len(ids)} recordings, "
                f"{args.p6_db} …",
                flush=True,
            )
            load = os.getloadavg()[0]
            sessions = db_sessions(url)
            before = cpu_seconds(proc.pid)
            if tool == "wrk":
                r = drive_wrk(server.url, token, ids, args.seconds, args.connections, 2, args.p6_mix)
                spent = {k: v - before[k] for k, v in cpu_seconds(proc.pid).items()}
                opened = db_sessions(url) - sessions
                # the same server answering /healthz: what this machine gives a trivial route right now
                floor = drive_wrk(server.url, token, ids, max(3.0, args.seconds / 3), args.connections, 2, "health")
            else:
                r = drive_httpx(server.url, token, ids, args.seconds, args.connections, args.p6_mix)
                spent = {k: v - before[k] for k, v in cpu_seconds(proc.pid).items()}
                opened = db_sessions(url) - sessions
                floor = drive_httpx(server.url, token, ids, max(3.0, args.seconds / 3), args.connections, "health")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # uvicorn's supervisor and its two workers
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {
        "p6_db": args.p6_db,
        "p6_client": tool,
        "p6_mix": args.p6_mix,
        "p6_workers": 2,
        "p6_connections": args.connections,
        "p6_recordings": len(ids),
        "p6_requests": r["requests"],
        "p6_seconds": round(r["seconds"], 1),
        "p6_req_per_s": round(r["requests"] / r["seconds"], 1),
        "p6_p50_ms": round(r["p50_ms"], 1),
        "p6_p95_ms": round(r["p95_ms"], 1),
        "p6_p99_ms": round(r["p99_ms"], 1),
        "p6_max_ms": round(r["max_ms"], 1),
        "p6_non_2xx": r["non_2xx"] + r["errors"],
        "p6_healthz_req_per_s": round(floor["requests"] / floor["seconds"], 1),
        "p6_reads_vs_healthz": round(r["requests"] / r["seconds"] / (floor["requests"] / floor["seconds"]), 2),
        **{f"p6_cpu_ms_per_read_{k}": round(1000 * v / max(r["requests"], 1), 2) for k, v in spent.items()},
        "p6_db_connections_per_1000_reads": round(1000 * opened / max(r["requests"], 1), 1),
        "p6_load_average": round(load, 1),
    }


def db_sessions(url: str) -> int:
    """How many sessions PostgreSQL has ended for this database so far (``pg_stat_database.sessions``; 0 on
    SQLite): during the load, the connections the servers closed, each opened for a burst and closed
    after it. A connection costs a backend's start and a login: 4.6-5.8 ms of PostgreSQL's CPU and 0.8-1.1 ms
    of the client's (BENCHMARKS.md), where a read costs PostgreSQL 1.2-1.6 ms."""
    if not url.startswith("postgresql"):
        return 0
    from tests.support.databases import _admin_conn

    name = url.rsplit("/", 1)[1]
    time.sleep(0.7)  # backends that just exited report their sessions at exit; let them
    with _admin_conn() as conn:  # type: ignore[no-untyped-call]
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the server's processes (its process group), by
    PostgreSQL's (every ``postgres`` process, and the backends that ended: the benchmark's database is the
    only busy one) and by the load generator (this process's reaped children): where a read's cost goes,
    including what requests per second do not show (the backends of connections that were closed)."""
    tick = os.sysconf("SC_CLK_TCK")
    server = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if int(fields[2]) == server_pid:  # pgrp
            server += used
        elif name == "postgres":  # and, of the postmaster, the backends it reaped (connections closed)
            postgres += used + (int(fields[13]) + int(fields[14])) / tick
    children = os.times()
    return {"server": server, "postgres": postgres, "client": children.children_user + children.children_system}


# --- the table and the entry points --------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("p4", "p6"), default=None, help="run one benchmark only")
    ap.add_argument(
        "--dir", type=Path, default=Path("bench-out") / "concurrency", help="work directory (removed at the end)"
    )
    ap.add_argument("--devices", type=int, default=20, help="P4: recorders docked at once")
    ap.add_argument("--device-mib", type=float, default=256, help="P4: footage per recorder (MiB)")
    ap.add_argument("--segments", type=int, default=8, help="P4: files per recorder")
    ap.add_argument(
        "--single-runs",
        type=int,
        default=2,
        help="P4: recorders docked alone one after another; the best is the baseline",
    )
    ap.add_argument("--p4-db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--timeout", type=float, default=900, help="P4: longest wait for the dockings (s)")
    ap.add_argument("--seconds", type=float, default=15, help="P6: how long the load runs")
    ap.add_argument("--connections", type=int, default=32, help="P6: concurrent connections")
    ap.add_argument("--recordings", type=int, default=400, help="P6: recordings seeded")
    ap.add_argument(
        "--p6-db",
        choices=("auto", "sqlite", "postgres"),
        default="auto",
        help="P6: auto is PostgreSQL when it answers on 127.0.0.1:5432 (the production database, "
        "which two API processes share without SQLite's write lock), else SQLite",
    )
    ap.add_argument(
        "--p6-mix",
        choices=("both", "list", "detail"),
        default="both",
        help="P6: the list and the detail read in turn, or one of them only",
    )
    ap.add_argument("--httpx", action="store_true", help="P6: drive with httpx even when wrk is installed")
    ap.add_argument("--pids", action="store_true", help="print the pids to profile (py-spy)")
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args(argv)


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks ``argv`` asks for and return their figures as one flat dict."""
    args = parse(argv)
    work = args.dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, Any] = {}
    try:
        if args.only in (None, "p4"):
            results.update(run_p4(args, work / "p4"))
        if args.only in (None, "p6"):
            results.update(run_p6(args, work / "p6"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':<34}{'value':>14}  {'target':<8}{'met':<4}"]
    for k, v in results.items():
        target, ok = TARGETS.get(k, ("", None))
        met = "" if ok is None else ("yes" if ok(v) else "NO")
        lines.append(f"{k:<34}{v!s:>14}  {target:<8}{met:<4}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--p6-client"]:  # the httpx load generator, in its own process
        spec = json.loads(argv[1])
        print(
            json.dumps(
                asyncio.run(
                    _httpx_client(
                        spec["url"], spec["token"], spec["ids"], spec["seconds"], spec["connections"], spec["mix"]
                    )
                )
            )
        )
        return 0
    args = parse(argv)
    results = collect(argv)
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    missed = [k for k, (_, ok) in TARGETS.items() if k in results and not ok(results[k])]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
