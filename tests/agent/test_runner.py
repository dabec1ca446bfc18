"""The running agent: a recorder appearing under a dock root is ingested; one-shot imports."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from rich.console import Console

from ingest_agent.client import enrol
from ingest_agent.config import AgentSettings
from ingest_agent.journal import Journal, TransferState
from ingest_agent.runner import main_ingest, run_agent
from tests.agent.conftest import Recorder
from tests.agent.test_end_to_end import agent_settings, server_recordings
from tests.support.live import LiveServer


def test_settings_read_dock_roots_from_the_environment(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CUSTODIA_AGENT_DOCK_ROOTS", f"{tmp_path}/a:{tmp_path}/b")
    monkeypatch.setenv("CUSTODIA_AGENT_WIPE_AFTER_RECEIPT", "true")
    settings = AgentSettings()
    assert settings.dock_roots == [tmp_path / "a", tmp_path / "b"]
    assert settings.wipe_after_receipt is True
    assert settings.upload_chunk_bytes == 128 * 1024 * 1024


def test_agent_ingests_recorders_docked_while_it_runs(tmp_path: Path, live_server: LiveServer) -> None:
    docks = tmp_path / "docks"
    docks.mkdir()
    settings = agent_settings(
        tmp_path,
        live_server,
        dock_roots=[docks],
        poll_interval=0.1,
        debounce_seconds=0.05,
        recover_interval=0.2,
        wipe_after_receipt=True,
    )
    enrol(live_server.url, live_server.enrolment_code("station-run"), station_file=settings.station_file)
    stop = threading.Event()
    out = io.StringIO()
    agent = threading.Thread(
        target=run_agent, args=(settings,), kwargs={"stop": stop, "console": Console(file=out, width=160)}
    )
    agent.start()
    try:
        staging = Recorder(tmp_path / "staging" / "ZFY_DSJ0001")
        rels = [staging.add(1, 100_000), staging.add(2, 200_000)]
        staging.root.rename(docks / "ZFY_DSJ0001")  # the recorder is plugged in
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(server_recordings(live_server)) < 2:
            time.sleep(0.1)
        docked = Recorder(docks / "ZFY_DSJ0001")
        while time.monotonic() < deadline and docked.snapshot():
            time.sleep(0.1)
    finally:
        stop.set()
        agent.join(timeout=20)
    assert not agent.is_alive()
    assert set(server_recordings(live_server)) == set(rels)
    assert docked.snapshot() == {}
    with Journal(settings.journal_path) as journal:
        (dock,) = journal.transfers()
    assert dock.state == TransferState.DONE
    assert "DSJ0001" in out.getvalue()


def test_one_shot_ingest_of_a_folder_with_the_identity_given_by_hand(tmp_path: Path, live_server: LiveServer) -> None:
    settings = agent_settings(tmp_path, live_server)
    enrol(live_server.url, live_server.enrolment_code("station-sd"), station_file=settings.station_file)
    folder = tmp_path / "sd-card" / "DCIM"
    folder.mkdir(parents=True)
    (folder / "20261120_093000_0001.MP4").write_bytes(b"\x00" * 5000)

    status = main_ingest(folder.parent, settings, serial="DSJ0001", officer_no="102345")

    assert status == 0
    assert set(server_recordings(live_server)) == {"DCIM/20261120_093000_0001.MP4"}
    assert (folder / "20261120_093000_0001.MP4").exists()  # wiping is off by default
