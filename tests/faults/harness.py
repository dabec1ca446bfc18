"""The crash campaigns' machinery, shared by tests/faults and the soak script (scripts/soak).

- ``Forks``: the fork server (tests/faults/forkserver.py) that starts agents and servers as real
  processes cheaply, so they can be SIGKILLed at will.
- ``Recorder``: a recorder's volume as a folder that keeps growing, remembering every recording
  ever written on it (path → fingerprint).
- ``JournalProbe``: reads the station journal from outside (read-only) to tell which phase of a
  transfer the agent is in: before the copy, after it, mid-upload, uploaded but not receipted,
  wiping. Kills are aimed by polling this, never by hooks in the agent.
- ``ServerView``: the server's database and object store read directly, for the invariants:
  every recording exactly once, every fingerprint right, no device file gone without a receipt.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from custodia_wire import fingerprint
from custodia_wire.documents import DocumentError, confirmed_files, load_public_key_b64

REPO = Path(__file__).resolve().parents[2]
SERIAL, OFFICER = "DSJ0001", "102345"
#: Recording sizes the campaigns draw from: empty segments, small, a few upload chunks, several.
SIZES = (0, 1_000, 70_000, 200_000, 450_000)
PHASES = ("before_copy", "after_copy", "mid_upload", "uploaded_unreceipted", "wiping", "random")


class Forks:
    """The fork server as a child process of the test."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.forkserver"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fork server died")
        return dict(json.loads(line))

    def agent(self, root: Path, settings: dict[str, Any], log: Path) -> int:
        cmd = {
            "op": "agent",
            "root": str(root),
            "settings": settings,
            "serial": SERIAL,
            "officer_no": OFFICER,
            "log": str(log),
        }
        return int(self._ask(cmd)["pid"])

    def server(self, env: dict[str, str], port: int, log: Path) -> int:
        return int(self._ask({"op": "server", "env": env, "port": port, "log": str(log)})["pid"])

    def exit_code(self, pid: int) -> int | None:
        code = self._ask({"op": "status", "pid": pid})["exit"]
        return None if code is None else int(code)

    def wait(self, pid: int, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.exit_code(pid)
            if code is not None:
                return code
            time.sleep(0.02)
        return None

    def kill(self, pid: int) -> int | None:
        """SIGKILL: no cleanup, as in a power cut. Returns the exit code (-9), or what it ended with first."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return self.wait(pid, 10)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@dataclass
class Recorder:
    """A recorder's volume that keeps recording: every file ever written is remembered."""

    root: Path
    rng: random.Random
    written: dict[str, str] = field(default_factory=dict)  # path → blake3
    seq: int = 0

    def record(self, n: int = 1, sizes: tuple[int, ...] = SIZES) -> list[str]:
        made = []
        for _ in range(n):
            self.seq += 1
            when = time.strftime("%Y%m%d", time.gmtime(1795000000 + self.seq * 86400 // 20))
            rel = f"DCIM/{when}/{SERIAL}_{OFFICER}_{when}{self.seq % 24:02d}0000_{self.seq:04d}.MP4"
            data = self.rng.randbytes(self.rng.choice(sizes))
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(".tmp-" + path.name)  # appear whole, as a recorder closes a segment
            tmp.write_bytes(data)
            os.replace(tmp, path)
            self.written[rel] = fingerprint.of_bytes(data).blake3
            made.append(rel)
        return made

    def present(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*.MP4") if p.is_file()}


class JournalProbe:
    """The station journal read from outside, to see how far the running agent got."""

    def __init__(self, path: Path, staging: Path) -> None:
        self.path, self.staging = path, staging
        self._db: sqlite3.Connection | None = None
        self._sizes: dict[str, int] = {}

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None and self.path.exists():
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5, isolation_level=None)
        return self._db

    def transfer_ids(self) -> set[str]:
        db = self._conn()
        return {r[0] for r in db.execute("SELECT transfer_id FROM docks")} if db else set()

    def growing_upload(self) -> bool:
        """Is some staged upload on the server growing right now (a PATCH in flight)?"""
        grew = False
        sizes = {}
        for part in self.staging.glob("*.part"):
            try:
                sizes[part.name] = part.stat().st_size
            except FileNotFoundError:
                continue
            if sizes[part.name] > self._sizes.get(part.name, sizes[part.name]):
                grew = True
        self._sizes = sizes
        return grew

    def phases(self, known: set[str]) -> set[str]:
        """The phases the newest docking (one not in ``known``) is in now."""
        found = {"mid_upload"} if self.growing_upload() else set()
        db = self._conn()
        if db is None:
            return found
        try:
            dock = db.execute("SELECT transfer_id, receipt FROM docks ORDER BY rowid DESC LIMIT 1").fetchone()
            if dock is None or dock[0] in known:
                return found
            states = Counter(r[0] for r in db.execute("SELECT state FROM files WHERE transfer_id=?", (dock[0],)))
        except sqlite3.Error:
            return found
        moved = states["copied"] + states["uploaded"] + states["receipted"] + states["wiped"]
        if states["pending"] and not moved:
            found.add("before_copy")
        if states["copied"] and not (states["uploaded"] or states["receipted"] or states["wiped"]):
            found.add("after_copy")
        if states["uploaded"] and dock[1] is None:
            found.add("uploaded_unreceipted")
        if states["wiped"] and states["receipted"]:
            found.add("wiping")
        return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class ServerView:
    """The server's records and objects, read directly (the API may be down while we look)."""

    def __init__(self, database_url: str, storage: Path, public_key_b64: str) -> None:
        self.database_url, self.storage = database_url, storage
        self.key = load_public_key_b64(public_key_b64)
        self._verified: dict[str, tuple[str, set[tuple[str, str]]]] = {}

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql))]
        finally:
            engine.dispose()

    def receipted(self) -> set[tuple[str, str]]:
        """(path, blake3) of every file a verified, signed receipt confirms."""
        out: set[tuple[str, str]] = set()
        for transfer_id, receipt in self._rows("SELECT id, receipt FROM transfers WHERE receipt IS NOT NULL"):
            text_ = receipt if isinstance(receipt, str) else json.dumps(receipt, sort_keys=True)
            cached = self._verified.get(transfer_id)
            if cached is None or cached[0] != text_:  # a receipt is replaced when a docking completes again
                try:
                    files = confirmed_files(json.loads(text_), self.key)
                except DocumentError:
                    files = {}  # a receipt that does not verify confirms nothing
                cached = self._verified[transfer_id] = (text_, {(p, item["blake3"]) for p, item in files.items()})
            out |= cached[1]
        return out

    def recordings(self) -> list[tuple[str, str, int, str, str]]:
        return [
            tuple(r)
            for r in self._rows(  # type: ignore[misc]
                "SELECT blake3, sha256, size, storage_key, original_path FROM recordings"
            )
        ]

    def links(self) -> list[tuple[str, str]]:
        """(device path, blake3) of every file a transfer brought, as the server linked them."""
        return [
            tuple(r)
            for r in self._rows(  # type: ignore[misc]
                "SELECT tf.path, r.blake3 FROM transfer_files tf JOIN recordings r ON r.id = tf.recording_id"
            )
        ]

    def object_mismatches(self) -> list[str]:
        """Recordings whose stored bytes do not have the recorded fingerprints."""
        bad = []
        for blake3, sha256, size, key, path in self.recordings():
            obj = self.storage / key
            fp = fingerprint.of_file(obj) if obj.exists() else None
            if fp is None or (fp.blake3, fp.sha256, fp.size) != (blake3, sha256, size):
                bad.append(f"{path}: stored object {'missing' if fp is None else 'differs'}")
        return bad


def wiped_without_receipt(recorder: Recorder, view: ServerView) -> list[str]:
    """Device files that are gone although no signed receipt confirms them: must always be empty."""
    gone = set(recorder.written) - recorder.present()
    receipted = view.receipted()
    return sorted(p for p in gone if (p, recorder.written[p]) not in receipted)


def lost_or_duplicated(recorder: Recorder, view: ServerView) -> list[str]:
    """After recovery: every recording ever written is on the server exactly once, with its fingerprint.

    Recordings are content-addressed: files with the same bytes (empty segments, say) share one
    recording, and each device file is linked to it by path (transfer_files). So: one recording per
    distinct content, no other recordings, and every file's path linked to the recording of its bytes.
    """
    problems = []
    recordings = Counter(blake3 for blake3, *_ in view.recordings())
    linked: dict[str, set[str]] = {}
    for path, blake3 in view.links():
        linked.setdefault(path, set()).add(blake3)
    for path, blake3 in sorted(recorder.written.items()):
        if recordings[blake3] != 1:
            problems.append(f"{recordings[blake3]} recordings hold the bytes of {path}")
        elif linked.get(path) != {blake3}:
            problems.append(f"{path} is linked to {sorted(linked.get(path, set()))}, not to its bytes {blake3}")
    extra = set(recordings) - set(recorder.written.values())
    problems += [f"unexpected recording {b}" for b in sorted(extra)]
    return problems + view.object_mismatches()


def agent_settings(server_url: str, data_dir: Path, **over: Any) -> dict[str, Any]:
    """Settings for a campaign agent: small blocks and chunks, so each phase lasts long enough to hit."""
    base: dict[str, Any] = {
        "server_url": server_url,
        "data_dir": str(data_dir),
        "wipe_after_receipt": True,
        "stability_seconds": 0,
        "spool_reserve_bytes": 0,
        "upload_chunk_bytes": 65536,
        "copy_block_bytes": 65536,
        "retry_attempts": 3,
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.2,
        "upload_resume_attempts": 3,
        "progress_interval": 0.2,
        "http_timeout_seconds": 10,
        "station_name": "fault-station",
        "recover_interval": 3600,
    }
    base.update(over)
    return base


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready")


@dataclass
class Site:
    """One evidence server (a forked process) and one station with a docked recorder."""

    forks: Forks
    tmp: Path
    database_url: str
    rng: random.Random
    env: dict[str, str] = field(default_factory=dict)
    server_pid: int | None = None
    port: int = 0
    runs: int = 0
    settle_timeout: float = 300.0  # one undisturbed agent run at the end of a campaign

    def __post_init__(self) -> None:
        from tests.support.live import LiveServer, free_port

        self.port = self.port or free_port()
        self.live = LiveServer(
            data_dir=self.tmp / "server", database_url=self.database_url, port=self.port, env=self.env
        )
        self.live.data_dir.mkdir(parents=True, exist_ok=True)
        self.live.bootstrap()
        self.logs = self.tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.agent_dir = self.tmp / "agent"
        self.recorder = Recorder(self.tmp / "media" / f"ZFY_{SERIAL}", self.rng)
        self.recorder.root.mkdir(parents=True)
        self.start_server()
        from ingest_agent.client import enrol

        enrol(self.url, self.live.enrolment_code("fault-station"), station_file=self.agent_dir / "station.json")
        self.public_key = json.loads((self.agent_dir / "station.json").read_text())["server_public_key"]
        settings = self.live.settings()
        self.view = ServerView(self.database_url, settings.storage_dir, self.public_key)
        self.probe = JournalProbe(self.agent_dir / "journal.sqlite3", settings.staging_dir)

    @property
    def url(self) -> str:
        return self.live.url

    def start_server(self) -> None:
        self.server_pid = self.forks.server(self.live.settings_env(), self.port, self.logs / "server.log")
        wait_ready(self.url)

    def kill_server(self) -> None:
        assert self.server_pid is not None
        self.forks.kill(self.server_pid)
        self.server_pid = None

    def stop_server(self) -> None:
        if self.server_pid is not None:
            os.kill(self.server_pid, signal.SIGTERM)
            if self.forks.wait(self.server_pid, 15) is None:
                self.forks.kill(self.server_pid)
            self.server_pid = None

    def run_agent(self, **over: Any) -> int:
        self.runs += 1
        return self.forks.agent(
            self.recorder.root, agent_settings(self.url, self.agent_dir, **over), self.logs / "agent.log"
        )

    def settle(self, runs: int = 4, **over: Any) -> int | None:
        """Let the agent run undisturbed until a docking ends ``done`` with the device emptied."""
        code = None
        for _ in range(runs):
            pid = self.run_agent(**over)
            code = self.forks.wait(pid, self.settle_timeout)
            if code is None:  # hung: never two agents on one journal
                self.forks.kill(pid)
                return None
            if code == 0 and not self.recorder.present():
                break
        return code

    def close(self) -> None:
        if self.server_pid is not None:
            self.kill_server()  # a test server: no need to wait for a graceful stop
        self.probe.close()


@dataclass
class Campaign:
    """What a crash campaign did and what it found."""

    name: str
    seed: int
    injected: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)  # found right after a fault
    problems: list[str] = field(default_factory=list)  # found after recovery
    recordings: int = 0

    @property
    def faults(self) -> int:
        return sum(self.injected.values())

    @property
    def survived(self) -> int:
        return self.faults if not (self.violations or self.problems) else 0

    def line(self) -> str:
        phases = ", ".join(f"{k} {v}" for k, v in sorted(self.injected.items()))
        return (
            f"{self.name} (seed {self.seed}): {self.faults} injected [{phases}], {self.survived} survived, "
            f"{self.recordings} recordings checked, {len(self.violations) + len(self.problems)} problems"
        )


def aim(site: Site, pid: int, known: set[str], target: str, timeout: float = 30.0) -> bool:
    """Wait until the agent is in ``target``; False if it ended (or took too long) first."""
    deadline = time.monotonic() + timeout
    site.probe.growing_upload()  # baseline sizes of staged uploads
    while time.monotonic() < deadline:
        if target in site.probe.phases(known):
            return True
        if site.forks.exit_code(pid) is not None:
            return False
        time.sleep(0.002)
    return False


def agent_kill_campaign(site: Site, kills: int, seed: int) -> Campaign:
    """SIGKILL the agent at ``kills`` moments aimed at each phase of a transfer (and some at random)."""
    rng, report = random.Random(seed), Campaign("agent kill -9", seed)
    for _attempt in range(kills * 5):
        if report.faults >= kills:
            break
        if len(site.recorder.present()) < 2 or rng.random() < 0.6:
            site.recorder.record(rng.randint(1, 4))
        missing = [p for p in PHASES if not report.injected[p]]
        # the last kills go to phases not hit yet, so that a short campaign still covers every one
        target = rng.choice(missing if missing and kills - report.faults <= 2 * len(missing) else PHASES)
        known = site.probe.transfer_ids()
        pid = site.run_agent()
        if target == "random":
            time.sleep(rng.uniform(0.0, 1.0))
            hit = site.forks.exit_code(pid) is None
        else:
            hit = aim(site, pid, known, target)
        if hit:
            time.sleep(rng.uniform(0.0, 0.004))
            if site.forks.kill(pid) == -signal.SIGKILL:
                report.injected[target] += 1
        elif site.forks.wait(pid, 300) is None:
            site.forks.kill(pid)
            report.problems.append(f"agent run {site.runs} hung (see {site.logs / 'agent.log'})")
        report.violations += [
            f"after kill {report.faults}: {p} wiped without a receipt"
            for p in wiped_without_receipt(site.recorder, site.view)
        ]
    return finish(site, report)


#: Where server kills are aimed: mostly at an upload's bytes in flight, some at the manifest's completion.
SERVER_TARGETS = ("mid_upload", "mid_upload", "mid_upload", "uploaded_unreceipted")
UPLOAD_SIZES = (450_000, 1_500_000, 4_000_000)


def server_kill_campaign(site: Site, kills: int, seed: int) -> Campaign:
    """SIGKILL the server ``kills`` times, each aimed (as the agent kills are) at a moment a station is
    talking to it: a PATCH's bytes arriving (a staged upload growing) or a transfer awaiting its receipt.
    A moment missed (the agent finished first) is tried again with new recordings, never spent between docks."""
    rng, report = random.Random(seed), Campaign("server kill -9", seed)
    patient = {"retry_attempts": 60, "retry_base_delay": 0.05, "retry_max_delay": 0.25, "upload_resume_attempts": 60}
    agent: int | None = None
    known: set[str] = set()
    for _attempt in range(kills * 10):
        if report.faults >= kills:
            break
        if agent is None or site.forks.exit_code(agent) is not None:
            site.recorder.record(rng.randint(2, 4), sizes=UPLOAD_SIZES)  # big enough to be caught mid-PATCH
            known = site.probe.transfer_ids()
            agent = site.run_agent(**patient)
        target = SERVER_TARGETS[report.faults % len(SERVER_TARGETS)]
        if not aim(site, agent, known, target, timeout=20):
            continue
        time.sleep(rng.uniform(0.0, 0.004))
        site.kill_server()
        report.injected[target] += 1
        if target == "uploaded_unreceipted":
            known = site.probe.transfer_ids()  # the next kill of this kind waits for another transfer
        time.sleep(rng.uniform(0.0, 0.3))
        site.start_server()
        report.violations += [
            f"after kill {report.faults}: {p} wiped without a receipt"
            for p in wiped_without_receipt(site.recorder, site.view)
        ]
    if agent is not None and site.forks.wait(agent, 300) is None:
        site.forks.kill(agent)
        report.problems.append("agent hung after the last server kill")
    return finish(site, report)


def finish(site: Site, report: Campaign) -> Campaign:
    """Recovery: the agent runs undisturbed; then every invariant is checked."""
    code = site.settle()
    if code != 0 or site.recorder.present():
        report.problems.append(
            f"recovery did not finish: exit {code}, {len(site.recorder.present())} file(s) "
            f"still on the device (see {site.logs / 'agent.log'})"
        )
    report.violations += [f"{p} wiped without a receipt" for p in wiped_without_receipt(site.recorder, site.view)]
    report.problems += lost_or_duplicated(site.recorder, site.view)
    report.recordings = len(site.view.recordings())
    leftovers = sorted(p.name for p in (site.agent_dir / "spool").glob("*"))
    if leftovers:
        report.problems.append(f"spool not emptied after every receipt: {leftovers[:10]}")
    return report
