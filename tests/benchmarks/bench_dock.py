"""P1–P3: agent ingest against ``cp``, the fingerprint-only check against ``b3sum``, and dock to
verified on the server against ``cp``; memory while a 4 GiB file goes through.

Every figure is a ratio against a baseline measured in the same run on the same tree; the two
sides run interleaved ``--rounds`` times and their medians are compared, so a noisy machine moves
both. Part of ``scripts/bench`` (see BENCHMARKS.md); alone::

    .venv/bin/python -m tests.benchmarks.bench_dock                      # 2 GiB tree, 4 GiB file
    .venv/bin/python -m tests.benchmarks.bench_dock --gib 1 --big-gib 0 --rounds 1   # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from device_drivers.mass_storage import MassStorageDriver
from device_drivers.simulator import simulate_device
from ingest_agent.config import AgentSettings
from ingest_agent.copy import Spool, copy_recording
from tests.support.live import LiveServer, free_port, wait_ready

GiB = 1024**3
MiB = 1024**2


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def make_tree(mount_root: Path, serial: str, total: int, segment_bytes: int) -> Path:
    segments = max(1, total // segment_bytes)
    vol = simulate_device(mount_root, serial=serial, segments=segments, big_bytes=segment_bytes)
    return vol.root


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drop_from_cache(path: Path) -> None:
    """Evict a tree from the page cache where the kernel lets us (POSIX_FADV_DONTNEED)."""
    for p in path.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def bench_cp(src: Path, work: Path) -> tuple[float, float]:
    """(cp -r seconds, cp -r followed by sync of the destination seconds)."""
    dest = work / "cp-dest"
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    t_cp = timed(lambda: subprocess.run(["cp", "-r", str(src), str(dest)], check=True))
    t_sync = timed(lambda: subprocess.run(["sync", "-f", str(dest)], check=True))
    shutil.rmtree(dest)
    return t_cp, t_cp + t_sync


def bench_b3sum(src: Path) -> float:
    files = sorted(str(p) for p in src.rglob("*") if p.is_file())
    return timed(lambda: subprocess.run(["b3sum", "--num-threads", "1", *files], check=True, stdout=subprocess.DEVNULL))


def bench_agent_ingest(src: Path, work: Path) -> float:
    """The agent's ingest stage: single read, BLAKE3 + SHA-256, spool write, fsync, per file."""
    spool_dir = work / "spool"
    shutil.rmtree(spool_dir, ignore_errors=True)
    spool = Spool(spool_dir, None, 0)
    os.sync()
    with MassStorageDriver(src) as driver:
        entries = driver.list_recordings()
        t = time.perf_counter()
        for i, e in enumerate(entries):
            copy_recording(driver, e.path, expected=driver.stat_recording(e.path), spool=spool, file_id=i + 1)
        elapsed = time.perf_counter() - t
    shutil.rmtree(spool_dir)
    return elapsed


class RssWatch(threading.Thread):
    """Samples a process's resident memory every 50 ms; keeps the first and the highest value."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.first = self.peak = self._rss()
        self.stop = threading.Event()

    def _rss(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self._rss())


def agent_env(server: LiveServer, agent_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CUSTODIA_AGENT_SERVER_URL": server.url,
        "CUSTODIA_AGENT_DATA_DIR": str(agent_dir),
        "CUSTODIA_AGENT_STABILITY_SECONDS": "0.2",
        "CUSTODIA_AGENT_SPOOL_RESERVE_BYTES": str(64 * MiB),
    }


def run_agent_ingest(server: LiveServer, volume: Path, agent_dir: Path, name: str) -> tuple[float, int, int]:
    """Enrol a station, then ``custodia agent ingest VOLUME``: (seconds, agent peak RSS, server RSS growth)."""
    env = agent_env(server, agent_dir)
    custodia = str(Path(sys.executable).parent / "custodia")
    subprocess.run(
        [custodia, "agent", "enrol", server.enrolment_code(name), "--name", name],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    assert server._proc is not None
    watch_server = RssWatch(server._proc.pid)
    watch_server.start()
    os.sync()
    t = time.perf_counter()
    proc = subprocess.Popen([custodia, "agent", "ingest", str(volume)], env=env, stdout=subprocess.DEVNULL)
    watch_agent = RssWatch(proc.pid)
    watch_agent.start()
    rc = proc.wait()
    elapsed = time.perf_counter() - t
    watch_agent.stop.set()
    watch_server.stop.set()
    if rc != 0:
        raise SystemExit(f"agent ingest of {volume} exited with {rc}")
    return elapsed, watch_agent.peak, watch_server.peak - watch_server.first


def verified_bytes(server: LiveServer) -> int:
    items = httpx.get(server.url + "/api/v1/recordings?limit=500", headers=server.admin_headers).json()["items"]
    return sum(i["size"] for i in items)


def sm3_one_core_mib_s(mib: int = 256) -> float:
    """MiB/s of ``hashlib``'s SM3 (OpenSSL) on one core: the server computes SM3 in its receiving pass,
    and it is the slowest of its three digests, so this bounds one upload."""
    data = os.urandom(mib * MiB)
    t = time.perf_counter()
    hashlib.new("sm3", data).digest()
    return mib / (time.perf_counter() - t)


def median(values: list[float]) -> float:
    return statistics.median(values)


def alternate(rounds: int, **runs: Callable[[], float]) -> dict[str, list[float]]:
    """Run each measurement ``rounds`` times, interleaved (a, b, a, b, …); the seconds of each run.

    Interleaving spreads whatever else the machine does, and the state of its memory (on a VM,
    the first write to a fresh page of page cache costs a fault on the host), over both sides.
    """
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            seen[name].append(fn())
    return seen


def bench_verify_check(src: Path, work: Path) -> tuple[Callable[[], float], Callable[[], float]]:
    """P2: ``custodia verify --check`` against ``b3sum --num-threads 1 --check``, same listing, same files."""
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    sums = work / "B3SUMS"
    sums.write_text(subprocess.run(["b3sum", *files], cwd=src, check=True, capture_output=True, text=True).stdout)
    custodia = str(Path(sys.executable).parent / "custodia")

    def ours() -> float:
        return timed(
            lambda: subprocess.run(
                [custodia, "verify", "--check", str(sums), str(src)], check=True, stdout=subprocess.DEVNULL
            )
        )

    def theirs() -> float:
        return timed(
            lambda: subprocess.run(
                ["b3sum", "--num-threads", "1", "--check", str(sums)], cwd=src, check=True, stdout=subprocess.DEVNULL
            )
        )

    return ours, theirs


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """P1–P3: run them and return the figures (also what ``main`` prints)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("bench-out"), help="work directory (same disk as the data)")
    ap.add_argument("--gib", type=float, default=2.0, help="size of the recorder tree")
    ap.add_argument("--segment-mib", type=int, default=256)
    ap.add_argument("--big-gib", type=float, default=4.0, help="one file this large for the RSS figures; 0 skips")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs of each side; medians are compared")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = (args.dir / "dock").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"generating a {args.gib} GiB recorder tree with ffmpeg under {work} …", flush=True)
    tree = make_tree(work / "dock", "BENCH01", int(args.gib * GiB), args.segment_mib * MiB)
    size = tree_bytes(tree)
    files = sum(1 for p in tree.rglob("*") if p.is_file())

    print("P1 ingest against cp, P2 verify --check against b3sum (interleaved) …", flush=True)
    ours_check, b3_check = bench_verify_check(tree, work)
    runs = alternate(
        args.rounds,
        cp=lambda: bench_cp(tree, work)[0],
        cp_sync=lambda: bench_cp(tree, work)[1],
        ingest=lambda: bench_agent_ingest(tree, work),
        b3sum=b3_check,
        verify=ours_check,
    )
    t = {name: median(times) for name, times in runs.items()}

    from evidence_server.dbadmin import upgrade

    print("P3 dock to verified, over loopback …", flush=True)
    docks: list[float] = []
    cps: list[float] = []
    big: dict[str, float] = {}
    (work / "server").mkdir()
    url = f"sqlite:///{work / 'server' / 'custodia.sqlite3'}"
    upgrade(url)
    server = LiveServer(data_dir=work / "server", database_url=url, mode="process", port=free_port())
    server.bootstrap()
    server.start()
    wait_ready(server.url)
    try:
        peaks: list[tuple[int, int]] = []
        for i in range(args.rounds):
            # each round is a new recorder (new serial, new bytes): the server holds nothing of it yet
            vol = (
                tree
                if i == 0
                else make_tree(work / f"dock-{i}", f"BENCH1{i}", int(args.gib * GiB), args.segment_mib * MiB)
            )
            cps.append(bench_cp(vol, work)[0])
            t_dock, agent_peak, server_growth = run_agent_ingest(server, vol, work / f"agent-{i}", f"bench-{i}")
            docks.append(t_dock)
            peaks.append((agent_peak, server_growth))
            if vol != tree:
                shutil.rmtree(vol.parent)
        assert verified_bytes(server) == size * args.rounds, "not every byte was verified on the server"
        if args.big_gib > 0:
            shutil.rmtree(tree)  # make room
            print(f"generating one {args.big_gib} GiB recording …", flush=True)
            big_tree = make_tree(work / "dock-big", "BENCH02", int(args.big_gib * GiB), int(args.big_gib * GiB))
            big_size = tree_bytes(big_tree)
            t_big, big_agent_peak, big_server_growth = run_agent_ingest(server, big_tree, work / "agent-big", "big")
            big = {
                "p3_big_file_gib": round(big_size / GiB, 2),
                "p3_big_mib_s": round(big_size / MiB / t_big, 1),
                "p3_agent_peak_rss_mib": round(big_agent_peak / MiB, 1),
                "p3_server_rss_growth_mib": round(big_server_growth / MiB, 1),
            }
    finally:
        server.stop()

    sm3_mib_s = median([sm3_one_core_mib_s() for _ in range(3)])
    t_cp_p3 = median(cps)
    t_dock = median(docks)
    fastest_cp = min(runs["cp"] + cps)  # the kindest moment of this machine's page cache for cp

    def rate(seconds: float) -> float:
        return round(size / MiB / seconds, 1)

    results: dict[str, Any] = {
        "tree_gib": round(size / GiB, 2),
        "tree_files": files,
        "rounds": args.rounds,
        "cp_mib_s": rate(t["cp"]),
        "cp_sync_mib_s": rate(t["cp_sync"]),
        "p1_ingest_mib_s": rate(t["ingest"]),
        "p1_ingest_vs_cp": round(t["cp"] / t["ingest"], 2),
        "p1_ingest_vs_cp_sync": round(t["cp_sync"] / t["ingest"], 2),
        "p1_ingest_vs_fastest_cp": round(fastest_cp / t["ingest"], 2),
        "b3sum_1t_check_mib_s": rate(t["b3sum"]),
        "p2_verify_check_mib_s": rate(t["verify"]),
        "p2_verify_check_vs_b3sum": round(t["b3sum"] / t["verify"], 2),
        "p3_cp_mib_s": rate(t_cp_p3),
        "p3_dock_to_verified_mib_s": rate(t_dock),
        "p3_dock_to_verified_vs_cp": round(t_cp_p3 / t_dock, 2),
        "p3_dock_to_verified_vs_fastest_cp": round(fastest_cp / t_dock, 2),
        "cp_runs_mib_s": " ".join(str(rate(x)) for x in runs["cp"] + cps),
        # the ceiling SM3 on receipt sets: one upload cannot pass one core's SM3, nor the server two cores'
        "p3_sm3_one_core_mib_s": round(sm3_mib_s, 1),
        "p3_dock_vs_sm3_one_core": round(size / MiB / t_dock / sm3_mib_s, 2),
        "p3_upload_streams": AgentSettings().upload_streams,  # what the agent subprocesses read from the environment
        "p3_dock_agent_peak_rss_mib": round(max(p[0] for p in peaks) / MiB, 1),
        "p3_dock_server_rss_growth_mib": round(max(p[1] for p in peaks) / MiB, 1),
        **big,
    }
    shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    results = collect(argv)
    print()
    print(f"{'figure':<36}{'value':>14}")
    for k, v in results.items():
        print(f"{k:<36}{v!s:>14}")
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--json", type=Path, default=None)
    out = ap.parse_known_args(argv)[0].json
    if out:
        out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
