"""Several files of one docking go up at once (``upload_streams``), and still every file arrives
exactly once, whole, and confirmed; a stream that loses the server loses nothing."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodia_wire import documents
from ingest_agent import pipeline
from ingest_agent.client import enrol
from ingest_agent.config import AgentSettings
from ingest_agent.journal import FileState, TransferState
from ingest_agent.pipeline import ingest_volume
from ingest_agent.transfer import Station
from tests.agent.conftest import SERIAL, Recorder
from tests.agent.test_end_to_end import agent_settings, assert_receipt_confirms
from tests.support.live import LiveServer

FILES = 6


@pytest.fixture
def station2(tmp_path: Path, live_server_any_db: LiveServer) -> Iterator[Station]:
    settings = agent_settings(tmp_path, live_server_any_db, upload_streams=2)
    enrol(live_server_any_db.url, live_server_any_db.enrolment_code("station-e2e"), station_file=settings.station_file)
    st = Station.open(settings)
    yield st
    st.close()


class InFlight:
    """Wraps ``upload_one``: counts the uploads running at once, and holds each until ``wanted`` run
    together (or ``patience`` seconds passed), so overlap is certain, not lucky."""

    def __init__(self, real: object, wanted: int = 2, patience: float = 5) -> None:
        self.real = real
        self.wanted, self.patience = wanted, patience
        self.active = 0
        self.most = 0
        self.calls: Counter[int] = Counter()
        self.cond = threading.Condition()

    def __call__(self, station: Station, transfer_id: str, file_id: int, reporter: object) -> bool:
        with self.cond:
            self.calls[file_id] += 1
            self.active += 1
            self.most = max(self.most, self.active)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.active >= self.wanted, timeout=self.patience)
        try:
            return self.real(station, transfer_id, file_id, reporter)  # type: ignore[operator]
        finally:
            with self.cond:
                self.active -= 1


def held_by_server(server: LiveServer) -> Counter[str]:
    page = server.get("/api/v1/recordings", params={"device_serial": SERIAL, "limit": 500}).json()
    return Counter(r["original_path"] for r in page["items"])


def test_two_streams_upload_at_once_and_every_file_arrives_once_and_whole(
    recorder: Recorder, station2: Station, live_server_any_db: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [recorder.add(n, 700_000 + 131_071 * n) for n in range(1, FILES + 1)]
    contents = {rel: recorder.path(rel).read_bytes() for rel in files}
    spy = InFlight(pipeline.upload_one)
    monkeypatch.setattr(pipeline, "upload_one", spy)

    report = ingest_volume(recorder.root, station=station2)

    assert report.state == TransferState.DONE, report.error
    assert spy.most == 2  # two at once: the setting is used, and no more than it allows
    assert all(n == 1 for n in spy.calls.values()) and len(spy.calls) == FILES
    assert held_by_server(live_server_any_db) == Counter(files)  # each once: none lost, none twice
    assert_receipt_confirms(documents.confirmed_files(report.receipt or {}, station2.client.public_key), contents)


def test_a_stream_that_loses_the_server_loses_nothing(
    recorder: Recorder, station2: Station, live_server_any_db: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One stream's upload finds the server gone while the other's succeeds: what was not sent stays
    copied on the station, and the docking's completion sends exactly that, once."""
    files = [recorder.add(n, 300_000 + n) for n in range(1, FILES + 1)]
    real = pipeline.upload_one
    failed: list[int] = []
    lock = threading.Lock()

    def flaky(station: Station, transfer_id: str, file_id: int, reporter: object) -> bool:
        with lock:
            if not failed:  # the first upload to start: the server is unreachable for it
                failed.append(file_id)
                return False
        return real(station, transfer_id, file_id, reporter)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "upload_one", flaky)
    report = ingest_volume(recorder.root, station=station2)

    assert report.state == TransferState.DONE, report.error
    assert held_by_server(live_server_any_db) == Counter(files)  # each once: the failed one too
    assert {f.state for f in station2.journal.files(report.transfer_id)} == {FileState.RECEIPTED}
    assert station2.journal.file(failed[0]).state == FileState.RECEIPTED


def test_with_another_docking_open_a_docking_sends_one_file_at_a_time(
    recorder: Recorder, station2: Station, live_server_any_db: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crowd at the end of a shift: with as many dockings open as there are streams, each sends one
    file at a time (fair shares of the server), instead of each doubling its uploads."""
    files = [recorder.add(n, 400_000 + n) for n in range(1, 5)]
    spy = InFlight(pipeline.upload_one, wanted=2, patience=1.0)  # waits for a second that must not come
    monkeypatch.setattr(pipeline, "upload_one", spy)
    station2.uploads_opened(+1)  # another recorder's docking, uploading on this station
    try:
        report = ingest_volume(recorder.root, station=station2)
    finally:
        station2.uploads_opened(-1)

    assert report.state == TransferState.DONE, report.error
    assert spy.most == 1
    assert held_by_server(live_server_any_db) == Counter(files)
    assert station2.uploading_docks == 0  # the docking's own count given back


def test_two_dockings_at_once_finish_whole(tmp_path: Path, station2: Station, live_server_any_db: LiveServer) -> None:
    """Two recorders docked on one station at the same moment: both end done, every file once."""
    roots = []
    for serial in ("DSJ0101", "DSJ0102"):
        root = tmp_path / "media" / f"ZFY_{serial}"
        for n in range(1, 4):
            f = root / "DCIM" / "20261120" / f"{serial}_102345_20261120093{n}00_000{n}.MP4"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(os.urandom(400_000 + n))  # each recorder's own bytes (equal bytes are one recording)
        roots.append(root)
    reports: dict[Path, object] = {}

    def dock(root: Path) -> None:
        reports[root] = ingest_volume(root, station=station2)

    threads = [threading.Thread(target=dock, args=(r,)) for r in roots]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert all(r.state == TransferState.DONE for r in reports.values()), reports  # type: ignore[attr-defined]
    page = live_server_any_db.get("/api/v1/recordings", params={"limit": 50}).json()
    assert page["total"] == 6 and len({i["original_path"] for i in page["items"]}) == 6
    assert station2.uploading_docks == 0


def test_the_default_is_two_streams() -> None:
    assert AgentSettings.model_fields["upload_streams"].default == 2
