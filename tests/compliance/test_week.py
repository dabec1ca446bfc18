"""A simulated week, end to end: recorders made by the simulator, docked through the ingest agent,
checked out and returned through the ledger API, downloaded through the recordings API, with one
violation of each kind injected. The server's clock and the agent's travel through the week together
(time-machine); the test asserts that each injected violation is flagged and that nothing else is."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_drivers.base import DeviceStatus
from device_drivers.errors import DriverError
from device_drivers.folder import FolderDriver
from device_drivers.simulator import simulate_device
from ingest_agent.client import enrol
from ingest_agent.config import AgentSettings
from ingest_agent.journal import TransferState
from ingest_agent.pipeline import ingest_volume
from ingest_agent.transfer import Station
from tests.support.live import LiveServer

time_machine = pytest.importorskip("time_machine")
pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]
BJ = timezone(timedelta(hours=8))
MON = datetime(2026, 3, 2, tzinfo=BJ)  # Monday 00:00, Beijing time
READINGS = {"battery_percent": 95, "storage_free_bytes": 64 * 1024**3, "clock_offset_s": 1.5}
OFFICERS = {"officer1": "102345", "officer2": "102346"}


class Recorder(FolderDriver):
    """A docked recorder: its clock may run ahead, and some of its files may be unreadable."""

    def __init__(
        self, root: Path, *, clock_ahead_s: float | None = None, unreadable: tuple[str, ...] = (), **kw: Any
    ) -> None:
        super().__init__(root, **kw)
        self.clock_ahead_s, self.unreadable = clock_ahead_s, unreadable

    def read_status(self) -> DeviceStatus:
        now = datetime.now(UTC)
        if self.clock_ahead_s is None:
            return super().read_status()
        return DeviceStatus(clock=now + timedelta(seconds=self.clock_ahead_s), read_at=now)

    def open_recording(self, path: str) -> Any:
        if path in self.unreadable:
            raise DriverError(f"{path}: unreadable sector")
        return super().open_recording(path)


class Week:
    def __init__(self, server: LiveServer, station: Station, media: Path, traveller: Any) -> None:
        self.server, self.station, self.media, self.traveller = server, station, media, traveller
        self.tokens: dict[str, str] = {}
        self.users: dict[str, int] = {}

    def at(self, day: int, hh: int, mm: int = 0) -> datetime:
        moment = MON + timedelta(days=day, hours=hh, minutes=mm)
        self.traveller.move_to(moment)
        return moment

    def call(self, who: str, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return httpx.request(
            method,
            self.server.url + path,
            json=body,
            timeout=60,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            **kw,
        )

    def checkout(self, serial: str, officer: str, hours: float = 3, clock_offset_s: float = 1.5) -> None:
        body = {
            "serial": serial,
            "officer_id": self.users[officer],
            "enforcement_matter": "食品安全日常检查",
            "expected_return_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
            "readings": {**READINGS, "clock_offset_s": clock_offset_s},
        }
        if abs(clock_offset_s) > 60:
            body["override_reason"] = "时钟待校准，先行出勤"
        r = self.call("devadmin", "POST", "/api/v1/ledger/checkouts", body)
        assert r.status_code == 201, r.text

    def give_back(self, serial: str) -> None:
        r = self.call("devadmin", "POST", "/api/v1/ledger/returns", {"serial": serial, "condition": "good"})
        assert r.status_code == 201, r.text

    def record(
        self, serial: str, officer: str, start: datetime, segments: int = 2, clock_ahead_s: float = 0, **options: Any
    ) -> list[str]:
        """The officer records; the device names files by its own clock."""
        vol = simulate_device(
            self.media,
            serial=serial,
            officer_no=OFFICERS[officer],
            label=serial,
            start=start + timedelta(seconds=clock_ahead_s),
            segments=segments,
            segment_seconds=5,
            resolution="96x64",
            fps=5,
            **options,
        )
        return [s.path for s in vol.written if s.path]

    def dock(self, serial: str, officer: str, **options: Any) -> None:
        driver = Recorder(self.media / serial, serial=serial, officer_no=OFFICERS[officer], **options)
        report = ingest_volume(self.media / serial, station=self.station, driver=driver)
        assert report.state in (TransferState.DONE, TransferState.FAILED), report.error

    def scan(self) -> None:
        self.wait_for_background()
        r = self.call("legal", "POST", "/api/v1/compliance/scans", {"scope": "full"})
        assert r.status_code == 201, r.text

    def wait_for_background(self) -> None:
        """Media probes and incremental scans run on the server's task pool."""
        self.server._server.config.app.state.ctx.tasks.drain()  # noqa: SLF001

    def flags(self, **params: Any) -> list[dict[str, Any]]:
        r = self.call("legal", "GET", "/api/v1/compliance/flags", params={"limit": 500, **params})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def recordings(self, serial: str) -> list[dict[str, Any]]:
        r = self.call("legal", "GET", "/api/v1/recordings", params={"device_serial": serial, "limit": 500})
        return sorted(r.json()["items"], key=lambda x: x["original_path"])


@pytest.fixture
def week(tmp_path: Path, sqlite_url: str, ffmpeg: None) -> Iterator[Week]:
    with time_machine.travel(MON - timedelta(hours=12), tick=True) as traveller:
        server = LiveServer(
            data_dir=tmp_path / "server",
            database_url=sqlite_url,
            env={
                "CUSTODIA_SESSION_HOURS": "1000",
                "CUSTODIA_COMPLIANCE_MIN_RECORDED_RATIO": "0.1",
                "CUSTODIA_COMPLIANCE_BULK_DOWNLOAD_THRESHOLD": "3",
                "CUSTODIA_FIXITY_BYTES_PER_SECOND": "0",
                "CUSTODIA_FIXITY_FILES_PER_RUN": "500",
            },
        )
        server.data_dir.mkdir(parents=True)
        server.bootstrap()
        server.start()
        settings = AgentSettings(
            server_url=server.url,
            data_dir=tmp_path / "agent",
            stability_seconds=0.0,
            spool_reserve_bytes=0,
            retry_attempts=2,
            retry_base_delay=0.05,
            upload_resume_attempts=2,
            progress_interval=0.0,
            station_name="采集站-1",
        )
        settings.prepare_dirs()
        enrol(server.url, server.enrolment_code("采集站-1"), station_file=settings.station_file)
        station = Station.open(settings)
        w = Week(server, station, tmp_path / "media", traveller)
        people(
            w,
            ("devadmin", "device_admin"),
            ("officer1", "officer"),
            ("officer2", "officer"),
            ("legal", "legal_affairs"),
            ("handler", "case_handler"),
        )
        for serial in ("D1", "D2", "D3", "D4", "D5"):
            r = w.call(
                "devadmin", "POST", "/api/v1/devices", {"serial": serial, "model": "DSJ-SIM", "family": "folder"}
            )
            assert r.status_code == 201, r.text
        try:
            yield w
        finally:
            station.close()
            server.stop()


def test_a_week_with_one_violation_of_each_kind(week: Week, tmp_path: Path) -> None:
    w = week
    # Monday: D1 a clean task; D2's second segment deleted before the dock
    w.at(0, 9)
    w.checkout("D1", "officer1")
    w.checkout("D2", "officer2")
    w.record("D1", "officer1", w.at(0, 9, 0) + timedelta(seconds=20))
    w.record("D2", "officer2", MON + timedelta(hours=9, seconds=20), segments=3, gap_at=2)
    w.at(0, 9, 1)
    w.give_back("D1")
    w.give_back("D2")
    w.at(0, 9, 2)
    w.dock("D1", "officer1")
    w.dock("D2", "officer2")
    # Tuesday: D1 one segment re-encoded by an editor; D3 checked out with its clock 5 minutes off;
    # D4's clock runs 10 minutes ahead at the dock (its recordings are named by that clock)
    w.at(1, 9)
    w.checkout("D1", "officer1")
    w.checkout("D3", "officer2", clock_offset_s=300)
    w.checkout("D4", "officer1")
    start = MON + timedelta(days=1, hours=9, seconds=20)
    w.record("D1", "officer1", start, edited=2)
    w.record("D3", "officer2", start)
    w.record("D4", "officer1", start, clock_ahead_s=600)
    w.at(1, 9, 1)
    for serial in ("D1", "D3", "D4"):
        w.give_back(serial)
    w.at(1, 9, 2)
    w.dock("D1", "officer1")
    w.dock("D3", "officer2")
    w.dock("D4", "officer1", clock_ahead_s=600)
    # Wednesday: D1 docked only on Thursday afternoon; D2's last file unreadable at the dock
    w.at(2, 9)
    w.checkout("D1", "officer1")
    w.checkout("D2", "officer2")
    start = MON + timedelta(days=2, hours=9, seconds=20)
    w.record("D1", "officer1", start)
    stuck = w.record("D2", "officer2", start)[-1]
    w.at(2, 9, 1)
    w.give_back("D1")
    w.give_back("D2")
    w.at(2, 9, 2)
    w.dock("D2", "officer2", unreadable=(stuck,))
    # Thursday: D3 taken out and back without a single recording; D5 taken and never returned
    w.at(3, 9)
    w.checkout("D3", "officer1")
    w.checkout("D5", "officer2", hours=2)
    w.at(3, 9, 1)
    w.give_back("D3")
    w.at(3, 9, 2)
    w.dock("D3", "officer1")
    w.at(3, 9, 30)  # D2's Wednesday file is now past its 24 hours
    w.scan()
    pending = [f for f in w.flags(kind="not_transferred") if f["device_serial"] == "D2"]
    assert [f["evidence"]["recording"]["path"] for f in pending] == [stuck]
    w.at(3, 14)
    w.dock("D1", "officer1")
    # Friday: D2's file finally arrives; D4 used in the evening without a checkout; D1 docked by officer2
    w.at(4, 10)
    w.dock("D2", "officer2")
    w.at(4, 14)
    w.checkout("D1", "officer1")
    w.record("D1", "officer1", MON + timedelta(days=4, hours=14, seconds=20))
    w.at(4, 14, 1)
    w.give_back("D1")
    w.at(4, 14, 2)
    w.dock("D1", "officer2")
    w.record("D4", "officer1", MON + timedelta(days=4, hours=20))
    w.at(4, 20, 5)
    w.dock("D4", "officer1")
    # Saturday: D2's last file unreadable at the dock, then gone from the device at the next dock
    w.at(5, 9)
    w.checkout("D2", "officer2")
    gone = w.record("D2", "officer2", MON + timedelta(days=5, hours=9, seconds=20))[-1]
    w.at(5, 9, 1)
    w.give_back("D2")
    w.at(5, 9, 2)
    w.dock("D2", "officer2", unreadable=(gone,))
    (w.media / "D2" / gone).unlink()
    w.at(5, 9, 5)
    w.dock("D2", "officer2")
    # Sunday: a case handler downloads four recordings of his own case (one more than allowed a day);
    # the device administrator downloads one that is in nobody's case; a stored file is corrupted
    w.at(6, 10)
    monday = w.recordings("D1")[:2] + w.recordings("D2")[:2]
    case = w.call("handler", "POST", "/api/v1/cases", {"number": "市监案〔2026〕18号", "name": "某超市过期食品案"})
    assert case.status_code == 201, case.text
    for rec in monday:
        r = w.call(
            "handler",
            "POST",
            f"/api/v1/cases/{case.json()['id']}/links",
            {"recording_id": rec["id"], "reason": "现场检查录像"},
        )
        assert r.status_code == 201, r.text
        assert w.call("handler", "GET", f"/api/v1/recordings/{rec['id']}/content").status_code == 200
    stray = w.recordings("D3")[0]
    assert w.call("devadmin", "GET", f"/api/v1/recordings/{stray['id']}/content").status_code == 200
    corrupted = w.recordings("D4")[0]
    _corrupt(w, corrupted["id"])
    w.at(6, 12)
    w.scan()

    got = Counter((f["kind"], f["device_serial"] or f["user_id"]) for f in w.flags())
    expected = Counter(
        {
            ("segment_gap", "D2"): 1,
            ("suspected_edit", "D1"): 1,
            ("clock_off", "D3"): 1,
            ("clock_off", "D4"): 1,
            ("late_transfer", "D1"): 2,
            ("late_transfer", "D2"): 1,
            ("missing_recording", "D3"): 1,
            ("device_overdue", "D5"): 1,
            ("used_outside_ledger", "D4"): 1,
            ("dock_by_non_holder", "D1"): 1,
            ("vanished_file", "D2"): 1,
            ("fixity_failure", "D4"): 1,
            ("bulk_download", w.users["handler"]): 1,
            ("access_outside_cases", w.users["devadmin"]): 1,
        }
    )
    assert got == expected
    late_d2 = [f for f in w.flags(kind="late_transfer") if f["device_serial"] == "D2"]
    assert [f["id"] for f in late_d2] == [pending[0]["id"]]  # the same flag, now "late"
    by_kind = {f["kind"]: f for f in w.flags()}
    assert by_kind["segment_gap"]["evidence"]["missing_seq"] == [2]
    edit = by_kind["suspected_edit"]["evidence"]  # judged against the device's own profile
    assert edit["signs"][0]["sign"] in ("profile", "editor_encoder")
    assert all(d["expected"] != d["found"] for d in edit["differences"])
    assert by_kind["dock_by_non_holder"]["evidence"]["docked_officer_no"] == "102346"
    assert by_kind["vanished_file"]["evidence"]["path"] == gone
    assert by_kind["fixity_failure"]["evidence"]["recording"]["recording_id"] == corrupted["id"]
    assert {f["evidence"]["clock_offset_s"] for f in w.flags(kind="clock_off")} == {300.0, 600.0}
    # the dashboard's rate: Monday-Saturday checkouts whose footage is complete, on time and untouched
    fig = w.call(
        "legal", "GET", "/api/v1/compliance/dashboard", params={"since": "2026-03-01", "until": "2026-03-08"}
    ).json()
    (u1,) = [r for r in fig["rates"] if r["unit_id"] == 1]
    # 11 checkouts; with footage flags: Mon D2 (gap), Tue D1 (edit), Wed D1 and D2 (late), Thu D3 (missing),
    # Sat D2 (vanished), Tue D4 (fixity)
    assert (u1["checkouts"], u1["flagged"]) == (11, 7)
    assert fig["total"] == sum(expected.values())
    # running the full scan again changes nothing
    before = {f["id"]: f["evidence"] for f in w.flags(include_cleared=True)}
    w.scan()
    assert {f["id"]: f["evidence"] for f in w.flags(include_cleared=True)} == before


def people(w: Week, *who_role: tuple[str, str]) -> None:
    """The unit's people with a login each (written directly: argon2 per user would dominate the test)."""
    from evidence_server.accounts.models import LoginSession, User
    from evidence_server.accounts.secrets import USER_TOKEN_PREFIX, new_token, token_hash
    from evidence_server.context import ServerContext
    from tests.compliance.conftest import password_hash

    ctx = ServerContext(w.server.settings())
    with ctx.sessionmaker() as s:
        for who, role in who_role:
            user = User(
                username=who,
                display_name=who,
                password_hash=password_hash(),
                role=role,
                unit_id=1,
                officer_no=OFFICERS.get(who),
            )
            s.add(user)
            s.flush()
            token = new_token(USER_TOKEN_PREFIX)
            s.add(
                LoginSession(
                    token_hash=token_hash(token), user_id=user.id, expires_at=datetime.now(UTC) + timedelta(days=30)
                )
            )
            w.tokens[who], w.users[who] = token, user.id
        s.commit()
    ctx.close()


def _corrupt(w: Week, recording_id: int) -> None:
    """Flip a byte of the stored object and let the fixity sweep find it."""
    from evidence_server.background.registry import REGISTRY
    from evidence_server.context import ServerContext
    from evidence_server.recordings.models import Recording

    ctx = ServerContext(w.server.settings())
    try:
        with ctx.sessionmaker() as s:
            rec = s.get(Recording, recording_id)
            assert rec is not None
            path = Path(str(ctx.store.locator(rec.storage_key)))
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.chmod(0o644)
        shutil.copyfile(path, path.with_suffix(".bak"))
        path.write_bytes(bytes(data))
        REGISTRY["fixity.sweep"](ctx)
    finally:
        ctx.close()
