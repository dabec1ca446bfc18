"""The benchmark suite, P1–P7 of BENCHMARKS.md, in one command: ``scripts/bench``.

Runs the benchmark modules one after the other (never at once: they would measure each other),
prints one table of figures with their targets, and writes the same results as JSON with the
machine they ran on, so runs can be compared (``--compare OLD.json`` prints both side by side).

    scripts/bench                       # everything at full size (about 7 minutes here)
    scripts/bench --quick               # smaller sizes, one round: a smoke run of the suite
    scripts/bench --only p1,p2,p3       # some of them
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    figure: str  # key in the results
    op: str  # ">=" or "<="
    value: float
    label: str

    def met(self, got: Any) -> bool | None:
        if not isinstance(got, int | float):
            return None
        return got >= self.value if self.op == ">=" else got <= self.value


TARGETS = [
    Target("p1_ingest_vs_cp", ">=", 0.9, "P1 agent ingest / cp"),
    Target("p2_verify_check_vs_b3sum", ">=", 0.8, "P2 fingerprint-only check / b3sum -j1"),
    Target("p3_dock_to_verified_vs_cp", ">=", 0.5, "P3 dock to verified / cp"),
    Target("p3_agent_peak_rss_mib", "<=", 143.0, "P3 agent peak RSS, 4 GiB file (150 MB)"),
    Target("p3_server_rss_growth_mib", "<=", 61.0, "P3 server RSS growth, 4 GiB file (64 MB)"),
    Target("p4_aggregate_vs_single", ">=", 0.8, "P4 20 docks' throughput / one dock"),
    Target("p4_fairness_slowest_vs_fastest", "<=", 1.5, "P4 slowest dock / fastest dock"),
    Target("p4_failed_transfers", "<=", 0, "P4 failed transfers"),
    Target("p5_case_lookup_p95_ms", "<=", 20.0, "P5 lookup by case number, p95 ms"),
    Target("p5_compliance_scan_s", "<=", 60.0, "P5 full compliance scan, s"),
    Target("p5_dashboard_p95_ms", "<=", 500.0, "P5 dashboard aggregates, p95 ms"),
    Target("p6_req_per_s", ">=", 500.0, "P6 metadata reads/s, 2 workers"),
    Target("p6_non_2xx", "<=", 0, "P6 failed reads"),
    Target("p7_appends_per_s", ">=", 1000.0, "P7 audit appends/s, 8 writers, PostgreSQL"),
    Target("p7_inclusion_p95_ms", "<=", 10.0, "P7 inclusion proof p95 ms, largest log"),
    Target("p7_inclusion_growth", "<=", 1.5, "P7 proof p95 largest / smallest log"),
    Target("p8_verified_vs_unverified", ">=", 0.8, "P8 verified download / unverified"),
]


def _dock(argv: list[str]) -> dict[str, Any]:
    from tests.benchmarks import bench_dock

    return bench_dock.collect(argv)


def _concurrency(argv: list[str]) -> dict[str, Any]:
    from tests.benchmarks import bench_concurrency

    return bench_concurrency.collect(argv)


def _audit(argv: list[str]) -> dict[str, Any]:
    from tests.benchmarks import bench_audit

    return bench_audit.collect(argv)


def _reads(argv: list[str]) -> dict[str, Any]:
    from tests.benchmarks import bench_reads

    return bench_reads.collect(argv)


def _queries(argv: list[str]) -> dict[str, Any]:
    from tests.benchmarks import bench_queries

    return bench_queries.collect(argv)


#: (name, the P-numbers it measures, runner, arguments at full size, arguments for --quick)
SUITES: list[tuple[str, set[str], Callable[[list[str]], dict[str, Any]], list[str], list[str]]] = [
    (
        "dock",
        {"p1", "p2", "p3"},
        _dock,
        [],
        ["--gib", "0.5", "--segment-mib", "128", "--big-gib", "0", "--rounds", "1"],
    ),
    ("concurrency", {"p4", "p6"}, _concurrency, [], ["--devices", "4", "--device-mib", "32", "--seconds", "5"]),
    ("queries", {"p5"}, _queries, [], ["--recordings", "100000", "--checkouts", "10000", "--cases", "5000"]),
    ("audit", {"p7"}, _audit, [], ["--sizes", "10000,100000", "--proofs", "50", "--per-writer", "100"]),
    ("reads", {"p8"}, _reads, [], ["--mib", "128", "--ranges", "20", "--rounds", "1"]),
]
#: arguments for --scale (a province: 10M recordings, 10M audit entries), added to the full-size ones
SCALE: dict[str, list[str]] = {
    "audit": ["--sizes", "1000000,10000000"],
    "queries": ["--recordings", "10000000", "--checkouts", "1000000", "--cases", "500000"],
}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        "load_at_start": os.getloadavg()[0],
    }


def table(results: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    lines = [f"{'figure':<44}{'value':>12}{'target':>12}{'met':>6}" + (f"{'before':>12}" if old else "")]
    targeted = {t.figure: t for t in TARGETS}
    for key, value in results.items():
        t = targeted.get(key)
        met = t.met(value) if t else None
        row = (
            f"{(t.label if t else key):<44}{value!s:>12}{(f'{t.op} {t.value:g}' if t else ''):>12}"
            f"{'' if met is None else ('yes' if met else 'NO'):>6}"
        )
        if old:
            row += f"{old.get(key, '')!s:>12}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="p1,p2,p3,p4,p5,p6,p7,p8", help="comma-separated: p1 … p8")
    ap.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    ap.add_argument("--scale", action="store_true", help="a province's sizes (10M recordings, 10M audit entries)")
    ap.add_argument("--json", type=Path, default=None, help="default: bench-out/results-<time>.json")
    ap.add_argument("--compare", type=Path, default=None, help="an earlier results JSON to print beside")
    args = ap.parse_args(argv)
    wanted = {p.strip().lower() for p in args.only.split(",") if p.strip()}
    started = datetime.now(UTC)
    run: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "scale": args.scale,
        "machine": machine(),
        "suites": {},
        "results": {},
    }
    for name, measures, fn, full, quick in SUITES:
        if not measures & wanted:
            continue
        extra = list(quick if args.quick else full) + (SCALE.get(name, []) if args.scale else [])
        if name == "concurrency" and not {"p4", "p6"} <= wanted:
            extra += ["--only", next(iter(measures & wanted))]
        print(f"\n=== {name}: {', '.join(sorted(measures & wanted)).upper()} ===", flush=True)
        t0 = time.monotonic()
        figures = fn(extra)
        run["suites"][name] = {"seconds": round(time.monotonic() - t0, 1), "args": extra}
        run["results"].update(figures)
    old = json.loads(args.compare.read_text())["results"] if args.compare else None
    print("\n" + table(run["results"], old))
    out = args.json or ROOT / "bench-out" / f"results-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
