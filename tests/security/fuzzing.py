"""``scripts/fuzz``: schemathesis against a live server with two units, as every role, with random seeds.

A world like the security suite's (tests/security/conftest.py: two units, every role in each, a
station per unit with real recordings, a case per unit) is built on a server of its own; then, for
each role in turn, ``schemathesis run`` sends at least ``--cases`` generated requests (the
examples, coverage, fuzzing and stateful phases, valid and invalid data) with that role's token,
the ids of both units' records in play. Every answer 5xx is a failure. The report gives, per role,
the cases sent, the time taken and the server errors found; the exit status is 1 if any was found.

The abuse limits are off for the run (they would answer 429 to most of it; tests/security checks
them on their own), and the calls that end the fuzzing session (logout, password change) are left out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.security.conftest import World, build_world
from tests.support.databases import PostgresTemplates, SqliteTemplates

#: The station goes first: a system administrator's fuzzing may revoke it.
ROLES = ("station", "anonymous", "officer", "device_admin", "case_handler", "legal_affairs", "auditor", "sysadmin")
SKIPPED_PATHS = ("/api/v1/auth/logout", "/api/v1/auth/password")
LIMITS_OFF = {
    "CUSTODIA_ANONYMOUS_REQUESTS_PER_MINUTE": "0",
    "CUSTODIA_CREDENTIAL_ATTEMPTS_PER_MINUTE": "0",
    "CUSTODIA_LOGIN_FAILURES_PER_ADDRESS": "0",
    "CUSTODIA_UPLOAD_CREATES_PER_MINUTE": "0",
}


@dataclass
class RoleRun:
    role: str
    seed: int
    cases: int
    seconds: float
    server_errors: list[str]


def operations(url: str) -> int:
    schema = httpx.get(url + "/openapi.json", timeout=30).json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for path, ops in schema["paths"].items() if path not in SKIPPED_PATHS for m in ops if m in methods)


def fuzz_role(world: World, role: str, cases: int, seed: int, workers: str, out: Path) -> RoleRun:
    url = world.server.url
    per_operation = max(1, math.ceil(cases / max(1, operations(url))))
    report = out / f"{role}.ndjson"
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        url + "/openapi.json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(per_operation),
        "--seed",
        str(seed),
        "--checks",
        "not_a_server_error",
        "--workers",
        workers,
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--continue-on-failure",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        *[arg for path in SKIPPED_PATHS for arg in ("--exclude-path", path)],
    ]
    for name, value in world.headers(role).items():
        cmd += ["--header", f"{name}: {value}"]
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=out)  # its .schemathesis/ too
    seconds = time.monotonic() - started
    (out / f"{role}.txt").write_text(result.stdout + result.stderr)
    return RoleRun(role, seed, count_cases(report, result.stdout), seconds, server_errors(result.stdout))


def count_cases(report: Path, stdout: str) -> int:
    """Requests sent: from the NDJSON event stream if it names them, else the summary line."""
    total = 0
    if report.exists():
        for line in report.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            for kind, body in event.items():
                if kind.endswith("ScenarioFinished") and isinstance(body, dict):
                    recorder = body.get("recorder") or {}
                    total += len(recorder.get("interactions") or {})
    if total:
        return total
    found = re.search(r"Test cases:\s*([\d,]+)", stdout)
    return int(found.group(1).replace(",", "")) if found else 0


def server_errors(stdout: str) -> list[str]:
    """The failures schemathesis printed (each names the operation and gives a curl line)."""
    blocks = re.split(r"\n(?=_{3,} )", stdout)
    return [b.strip()[:2000] for b in blocks if "Server error" in b]


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="generated requests per role (at least)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: a fresh random seed)")
    parser.add_argument("--roles", default=",".join(ROLES), help="comma-separated, in this order")
    parser.add_argument("--workers", default="2", help="schemathesis workers")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432 instead of SQLite")
    parser.add_argument("--out", type=Path, default=Path("var/fuzz"), help="reports and outputs go here")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"fuzz: seed {seed}, {args.cases} cases per role, roles {args.roles}", flush=True)
    runs: list[RoleRun] = []
    with tempfile.TemporaryDirectory(prefix="custodia-fuzz-") as tmp:
        root = Path(tmp)
        templates = PostgresTemplates() if args.postgres else SqliteTemplates(root)
        world = build_world(root, templates, **LIMITS_OFF)  # type: ignore[arg-type]
        try:
            for i, role in enumerate(args.roles.split(",")):
                run = fuzz_role(world, role, args.cases, seed + i, args.workers, args.out)
                runs.append(run)
                print(
                    f"{role:14} seed {run.seed:>10}  {run.cases:>7} cases  {run.seconds:7.0f} s  "
                    f"{len(run.server_errors)} server errors",
                    flush=True,
                )
                for error in run.server_errors:
                    print("    " + error.replace("\n", "\n    "), flush=True)
        finally:
            world.server.stop()
            if isinstance(templates, PostgresTemplates):
                templates.drop_all()
    total = sum(len(r.server_errors) for r in runs)
    print(
        f"fuzz: {sum(r.cases for r in runs)} cases in {sum(r.seconds for r in runs):.0f} s over {len(runs)} roles, "
        f"{total} server errors (seed {seed}; outputs in {args.out})"
    )
    return 1 if total else 0


if __name__ == "__main__":
    os.environ.setdefault("CUSTODIA_ENVIRONMENT", "test")
    sys.exit(main())
