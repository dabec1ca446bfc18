"""Faults: a fork server for cheap killable processes, sites (server + station + recorder), and private
PostgreSQL and Redis instances that a test may restart or stop without touching the shared ones."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.harness import Campaign, Forks, Site
from tests.support import services
from tests.support.databases import SqliteTemplates
from tests.support.live import free_port

#: What the fault tests did, printed at the end of the run (the issue asks for the counts).
CAMPAIGNS: list[Campaign] = []
TALLY: dict[str, int] = {}
SEED = int(os.environ.get("CUSTODIA_FAULT_SEED", "20261121"))


def count(what: str, n: int = 1) -> None:
    TALLY[what] = TALLY.get(what, 0) + n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CAMPAIGNS or TALLY:
        terminalreporter.write_sep("-", f"fault tallies (CUSTODIA_FAULT_SEED={SEED})")
        for c in CAMPAIGNS:
            terminalreporter.write_line(c.line())
        for what, n in sorted(TALLY.items()):
            terminalreporter.write_line(f"{what}: {n}")


@pytest.fixture(scope="session")
def forks() -> Iterator[Forks]:
    f = Forks()
    yield f
    f.close()


@pytest.fixture
def site(forks: Forks, tmp_path: Path, sqlite_templates: SqliteTemplates) -> Iterator[Callable[..., Site]]:
    """``site(database_url=None, **env)``: a forked server and an enrolled station with a recorder."""
    made: list[Site] = []

    def make(database_url: str | None = None, **env: str) -> Site:
        url = database_url or sqlite_templates.fresh(tmp_path / "db")
        s = Site(forks, tmp_path / f"site{len(made)}", url, random.Random(SEED), env=env)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# --- a private PostgreSQL cluster ------------------------------------------------------------------


@dataclass
class PrivatePostgres:
    """A cluster of our own under /tmp, run as the ``postgres`` user; restarting it disturbs nobody."""

    bindir: Path
    datadir: Path
    port: int

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.datadir / "server.log"),
                "-w",
                "-t",
                "60",
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._pg_ctl("-o", f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=on", "start")

    def restart(self, mode: str = "immediate") -> None:
        """``immediate``: the server processes die without a checkpoint, as in a crash; crash recovery follows."""
        self._pg_ctl("-m", mode, "restart")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins or shutil.which("runuser") is None:
        services.missing("PostgreSQL server binaries (initdb, pg_ctl) or runuser not installed")
    bindir = bins[-1].parent
    datadir = Path(f"/tmp/custodia-pg-{os.getpid()}-{free_port()}")
    datadir.mkdir(mode=0o700)
    shutil.chown(datadir, "postgres", "postgres")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    pg = PrivatePostgres(bindir, datadir, free_port())
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop()
        finally:
            shutil.rmtree(datadir, ignore_errors=True)


# --- a private Redis -----------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not services.port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise TimeoutError("private redis did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        services.missing("redis-server is not installed")
    r = PrivateRedis(free_port())
    r.start()
    yield r
    r.stop()


# --- an in-process station against a thread-mode server ------------------------------------------------


@pytest.fixture
def recorder(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tests.agent.conftest import SERIAL, Recorder

    root = tmp_path / "media" / f"ZFY_{SERIAL}"
    root.mkdir(parents=True)
    return Recorder(root)


@pytest.fixture
def station(tmp_path: Path, live_server):  # type: ignore[no-untyped-def]
    """The agent's Station (in this process) enrolled with ``live_server``, wiping after receipts."""
    from ingest_agent.client import enrol
    from ingest_agent.transfer import Station
    from tests.agent.test_end_to_end import agent_settings

    settings = agent_settings(
        tmp_path,
        live_server,
        wipe_after_receipt=True,
        copy_block_bytes=65536,
        upload_chunk_bytes=65536,
        retry_base_delay=0.01,
        retry_max_delay=0.05,
    )
    enrol(live_server.url, live_server.enrolment_code("station-faults"), station_file=settings.station_file)
    st = Station.open(settings)
    yield st
    st.close()
