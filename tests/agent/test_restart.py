"""A station that restarts with recorders in their docks takes none of them for a new docking (issue 21, item 7).

Before: every docked recorder was read again at start, which opened an empty "0 / 0 done" transfer on the
server, dated now, and a dock dated now could be judged against whoever held the device by then. Now the
station knows the docking it finished (same mount, never seen to go, nothing new on the device); a new
file, a failed file or a recorder taken out and put back is still a docking to transfer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from evidence_server.context import ServerContext
from evidence_server.ledger.models import DockMismatch
from evidence_server.transfers.models import Transfer
from ingest_agent.client import enrol
from ingest_agent.config import AgentSettings
from ingest_agent.dockings import mount_id, nothing_new
from ingest_agent.journal import Journal, TransferState
from ingest_agent.runner import run_agent
from tests.agent.conftest import SERIAL, Recorder
from tests.agent.test_end_to_end import agent_settings, server_recordings
from tests.support.live import LiveServer

SEEN_AGAIN = "already finished is still in the dock"


@contextmanager
def agent(settings: AgentSettings) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=run_agent, args=(settings,), kwargs={"stop": stop, "show_progress": False})
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def journal_transfers(settings: AgentSettings) -> list:  # type: ignore[type-arg]
    with Journal(settings.journal_path) as journal:
        return journal.transfers()


def wait_for(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def server_side(server: LiveServer) -> tuple[int, int]:
    """(transfers, dock mismatches) the server holds for the device."""
    ctx = ServerContext(server.settings())
    try:
        with ctx.sessionmaker() as s:
            transfers = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.device_serial == SERIAL))
            mismatches = s.scalar(
                select(func.count())
                .select_from(DockMismatch)
                .join(Transfer, Transfer.id == DockMismatch.transfer_id)
                .where(Transfer.device_serial == SERIAL)
            )
    finally:
        ctx.close()
    return int(transfers or 0), int(mismatches or 0)


@pytest.fixture
def docked(tmp_path: Path, live_server: LiveServer) -> tuple[AgentSettings, Path]:
    docks = tmp_path / "docks"
    docks.mkdir()
    settings = agent_settings(
        tmp_path, live_server, dock_roots=[docks], poll_interval=0.1, debounce_seconds=0.05, recover_interval=0.2
    )
    enrol(live_server.url, live_server.enrolment_code("station-restart"), station_file=settings.station_file)
    return settings, docks


def test_a_restarted_station_opens_no_transfer_for_a_recorder_it_finished(
    docked: tuple[AgentSettings, Path], live_server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, docks = docked
    staging = Recorder(tmp_path / "staging" / f"ZFY_{SERIAL}")
    rels = [staging.add(1, 100_000), staging.add(2, 0)]
    staging.root.rename(docks / f"ZFY_{SERIAL}")
    with agent(settings):
        wait_for(lambda: [t.state for t in journal_transfers(settings)] == [TransferState.DONE])
    assert set(server_recordings(live_server)) == set(rels)
    before = server_side(live_server)
    assert before[0] == 1

    caplog.set_level(logging.INFO, logger="ingest_agent")
    for _ in range(2):  # restarted twice, the recorder never leaving its dock
        caplog.clear()
        with agent(settings):
            wait_for(lambda: SEEN_AGAIN in caplog.text or len(journal_transfers(settings)) > 1)
        assert len(journal_transfers(settings)) == 1, "a restart opened a transfer for a finished docking"
    assert server_side(live_server) == before  # no empty transfer, no dock mismatch dated now

    # while the station is down the recorder gets a new file (it was recording in the dock): a docking to transfer
    new = Recorder(docks / f"ZFY_{SERIAL}").add(3, 50_000)
    with agent(settings):
        wait_for(lambda: len(server_recordings(live_server)) == 3)
        wait_for(lambda: all(t.state == TransferState.DONE for t in journal_transfers(settings)))
    assert set(server_recordings(live_server)) == {*rels, new}
    assert len(journal_transfers(settings)) == 2

    # taken out and put back while the station runs: a new docking, even with nothing new on it
    with agent(settings):
        caplog.clear()
        wait_for(lambda: SEEN_AGAIN in caplog.text)
        (docks / f"ZFY_{SERIAL}").rename(tmp_path / "out")
        time.sleep(1.0)  # the watcher sees it go
        (tmp_path / "out").rename(docks / f"ZFY_{SERIAL}")
        wait_for(lambda: len(journal_transfers(settings)) == 3)
        wait_for(lambda: all(t.state == TransferState.DONE for t in journal_transfers(settings)))
    assert server_side(live_server)[0] == 3


def test_nothing_new_is_decided_by_every_file_on_the_device() -> None:
    earlier = {("a.mp4", 10, "t1"): "receipted", ("b.mp4", 0, "t2"): "held", ("c.mp4", 5, "t3"): "failed"}
    assert nothing_new(earlier, [("a.mp4", 10, "t1"), ("b.mp4", 0, "t2")], wipes=False)
    assert nothing_new(earlier, [], wipes=True)  # wiped, and nothing recorded since
    assert not nothing_new(earlier, [("a.mp4", 10, "t1")], wipes=True)  # still owed its wipe
    assert not nothing_new(earlier, [("c.mp4", 5, "t3")], wipes=False)  # failed: tried again
    assert not nothing_new(earlier, [("a.mp4", 11, "t1")], wipes=False)  # same name, other bytes
    assert not nothing_new(earlier, [("a.mp4", 10, "t9")], wipes=False)
    assert not nothing_new(earlier, [("d.mp4", 1, "t4")], wipes=False)


def test_mount_id_reads_the_last_mount_on_a_point_with_escaped_names() -> None:
    info = (
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "36 22 8:17 / /media/ZFY\\040DSJ0001 rw - vfat /dev/sdb1 rw\n"
        "41 22 8:17 / /media/ZFY\\040DSJ0001 rw - vfat /dev/sdb1 rw\n"
    )
    assert mount_id(Path("/media/ZFY DSJ0001"), info) == "41"
    assert mount_id(Path("/media/other"), info) is None
