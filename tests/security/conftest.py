"""A server with two units, every role in each, a station per unit with recordings and a case.

``World`` knows every caller (anonymous, each role of unit 1, the unit's station, the metrics
scraper) and the identifiers of unit 2's records, so the tests can ask every route as everyone and
look for unit 2's footage where unit 1's users must not see it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from custodia_wire import documents
from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role
from evidence_server.context import ServerContext
from tests.server.test_station_flow import Station
from tests.support.databases import SqliteTemplates
from tests.support.live import LiveServer

METRICS_TOKEN = "metrics-scraper-token-for-tests"
#: Tallies the security tests print at the end (tests/faults/conftest.py prints the fault tallies).
TALLY: dict[str, int] = {}


def count(what: str, n: int = 1) -> None:
    TALLY[what] = TALLY.get(what, 0) + n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        terminalreporter.write_sep("-", "security tallies")
        for what, n in sorted(TALLY.items()):
            terminalreporter.write_line(f"{what}: {n}")


class UnitStation(Station):
    """The minimal station client of tests/server, enrolled in a given unit."""

    def __init__(self, server: LiveServer, name: str, unit_id: int) -> None:  # noqa: D107
        self.server = server
        code = server.enrolment_code(name, unit_id)
        r = httpx.post(server.url + "/api/v1/stations/enrol", json={"code": code})
        r.raise_for_status()
        self.enrolment = r.json()
        self.key = documents.load_public_key_b64(self.enrolment["server_public_key"])
        self.http = httpx.Client(
            base_url=server.url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.enrolment['token']}", "Tus-Resumable": "1.0.0"},
        )

    @property
    def token(self) -> str:
        return str(self.enrolment["token"])


@dataclass
class UnitRecords:
    unit_id: int
    serial: str
    officer_no: str
    station: UnitStation
    transfer_id: str = ""
    recording_ids: list[int] = field(default_factory=list)
    blake3: list[str] = field(default_factory=list)
    case_id: int | None = None
    case_number: str | None = None

    def markers(self) -> list[str]:
        """Strings that only a view of this unit's footage or records can contain."""
        names = [p.rsplit("/", 1)[-1] for p in recording_files(self.serial, self.officer_no)]
        return [self.serial, self.transfer_id, *names, *(b.removeprefix("blake3:") for b in self.blake3)]


@dataclass
class World:
    server: LiveServer
    tokens: dict[str, str]  # caller → bearer token ("anonymous" has none)
    units: dict[int, UnitRecords]

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens.get(caller)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def fresh_headers(self, caller: str) -> dict[str, str]:
        """A new login session for a user caller (for calls that end the session they use)."""
        if caller not in {r.value for r in Role}:
            return self.headers(caller)
        username = f"{caller}-u1"
        return {"Authorization": f"Bearer {self.server.login(username, f'{username}-password-123')}"}


def recording_files(serial: str, officer: str) -> dict[str, bytes]:
    return {
        f"DCIM/20261121/{serial}_{officer}_2026112109{i}000_000{i}.MP4": f"{serial} segment {i} ".encode() * 300
        + os.urandom(500)
        for i in (1, 2)
    }


def build_world(tmp: Path, templates: SqliteTemplates, **env: str) -> World:
    server = LiveServer(
        data_dir=tmp / "server",
        database_url=templates.fresh(tmp / "db"),
        # every probe of the suite comes from 127.0.0.1: the anonymous budgets would answer 429 to most of
        # them (test_anonymous_traffic.py tests the budgets on servers of its own)
        env={
            "CUSTODIA_METRICS_TOKEN": METRICS_TOKEN,
            "CUSTODIA_ANONYMOUS_REQUESTS_PER_MINUTE": "0",
            "CUSTODIA_CREDENTIAL_ATTEMPTS_PER_MINUTE": "0",
            **env,
        },
    )
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.bootstrap()
    ctx = ServerContext(server.settings())
    with ctx.sessionmaker() as session:
        accounts.ensure_unit(session, "U2", "第二执法大队")
        session.commit()
    ctx.close()
    server.start()
    units: dict[int, UnitRecords] = {}
    for unit_id, serial, officer in ((1, "DSJA1111", "111111"), (2, "DSJB7777", "777777")):
        station = UnitStation(server, f"station-unit-{unit_id}", unit_id)
        units[unit_id] = UnitRecords(unit_id, serial, officer, station)
    tokens: dict[str, str] = {"anonymous": "", "monitoring": METRICS_TOKEN, "station": units[1].station.token}
    for unit_id, rec in units.items():
        for role in Role:
            token = server.create_user(
                f"{role.value}-u{unit_id}",
                role.value,
                unit_id=unit_id,
                officer_no=rec.officer_no if role == Role.officer else None,
            )
            tokens[role.value if unit_id == 1 else f"{role.value}@u{unit_id}"] = token
    for rec in units.values():
        files = recording_files(rec.serial, rec.officer_no)
        rec.transfer_id = rec.station.open(files, serial=rec.serial, officer=rec.officer_no)["transfer_id"]
        for path, data in files.items():
            r = rec.station.upload(path, data)
            assert r.status_code == 204, r.text
            rec.recording_ids.append(int(r.headers["Custodia-Recording-Id"]))
        rec.station.complete(files)
        rec.blake3 = [server.get(f"/api/v1/recordings/{i}").json()["blake3"] for i in rec.recording_ids]
        _make_case(server, tokens, rec)
    return World(server, tokens, units)


def _make_case(server: LiveServer, tokens: dict[str, str], rec: UnitRecords) -> None:
    """A case in the unit with the unit's first recording linked (best effort: cases may be absent)."""
    who = "case_handler" if rec.unit_id == 1 else "case_handler@u2"
    number = f"杭西市监处罚〔2026〕{100 + rec.unit_id}号"
    headers = {"Authorization": f"Bearer {tokens[who]}"}
    r = httpx.post(server.url + "/api/v1/cases", headers=headers, json={"number": number, "name": f"案件 {rec.serial}"})
    if r.status_code != 201:
        return
    rec.case_id, rec.case_number = int(r.json()["id"]), number
    httpx.post(
        server.url + f"/api/v1/cases/{rec.case_id}/links",
        headers=headers,
        json={"recording_id": rec.recording_ids[0], "reason": "test"},
    )


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[World]:
    """Shared by the tests that only read, or change nothing that exists (ids that name nothing)."""
    w = build_world(tmp_path_factory.mktemp("world"), sqlite_templates)
    yield w
    w.server.stop()


def start_server(tmp: Path, templates: SqliteTemplates, **env: str) -> LiveServer:
    """A fresh server (thread mode, admin and unit U1) with extra CUSTODIA_* settings."""
    server = LiveServer(data_dir=tmp / "server", database_url=templates.fresh(tmp / "db"), env=env)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.bootstrap()
    return server.start()


@pytest.fixture
def server_with(tmp_path: Path, sqlite_templates: SqliteTemplates) -> Iterator:
    """``server_with(**env)``: a server of the test's own, for settings or state no other test may share."""
    started: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        started.append(start_server(tmp_path / f"s{len(started)}", sqlite_templates, **env))
        return started[-1]

    yield start
    for server in started:
        server.stop()
