"""Docks that never fail silently: a volume whose files arrive over seconds is read whole once it
settles; a recorder that cannot be identified is tried again, then reported to the server as a failed
port with its reason and what to do; refused files are listed with their reasons."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from device_drivers.settle import arrived, snapshot, wait_until_settled
from ingest_agent.client import enrol
from ingest_agent.config import AgentSettings
from ingest_agent.runner import run_agent
from tests.agent.conftest import Recorder
from tests.agent.test_end_to_end import agent_settings, server_recordings
from tests.support.live import LiveServer


def _settings(tmp_path: Path, server: LiveServer, docks: Path, **more: Any) -> AgentSettings:
    values: dict[str, Any] = dict(
        dock_roots=[docks],
        poll_interval=0.1,
        debounce_seconds=0.05,
        recover_interval=0.3,
        settle_seconds=0.6,
        settle_timeout_seconds=10.0,
        identify_attempts=2,
        identify_retry_seconds=0.2,
    )
    values.update(more)
    settings = agent_settings(tmp_path, server, **values)
    enrol(server.url, server.enrolment_code("station-ports"), station_file=settings.station_file)
    return settings


@contextmanager
def running_agent(settings: AgentSettings) -> Iterator[io.StringIO]:
    stop = threading.Event()
    out = io.StringIO()
    agent = threading.Thread(
        target=run_agent, args=(settings,), kwargs={"stop": stop, "console": Console(file=out, width=200)}
    )
    agent.start()
    try:
        yield out
    finally:
        stop.set()
        agent.join(timeout=30)
    assert not agent.is_alive()


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def ports(server: LiveServer) -> dict[str, dict[str, Any]]:
    return {p["port"]: p for p in server.get("/api/v1/docks/ports").json()}


def test_a_volume_whose_files_arrive_over_seconds_is_transferred_whole(tmp_path: Path, live_server: LiveServer) -> None:
    """The README's second recorder: the folder appears first, its segments one by one afterwards
    (as `custodia simulate-device` writes them). The old station looked at once and either failed
    ("no serial … none in file names") or took the first segment only."""
    docks = tmp_path / "docks"
    docks.mkdir()
    settings = _settings(tmp_path, live_server, docks)
    with running_agent(settings) as out:
        recorder = Recorder(docks / "ZFY_DSJ0001")
        recorder.root.mkdir()  # mounted, still empty
        time.sleep(0.4)
        rels = []
        for seq in (1, 2, 3):
            rels.append(recorder.add(seq, 50_000))
            time.sleep(0.35)  # each segment lands a little after the last, well within the quiet time
        wait_for(lambda: len(server_recordings(live_server)) == 3)
        final = wait_for(lambda: ports(live_server).get("ZFY_DSJ0001", {}).get("state") == "done" and ports)
    assert set(server_recordings(live_server)) == set(rels)
    assert final is not None
    assert "not a recorder" not in out.getvalue()


def test_an_unidentifiable_recorder_is_retried_then_shown_as_a_failed_port(
    tmp_path: Path, live_server: LiveServer
) -> None:
    docks = tmp_path / "docks"
    docks.mkdir()
    settings = _settings(tmp_path, live_server, docks)
    with running_agent(settings):
        volume = docks / "NO_LABEL"
        (volume / "DCIM").mkdir(parents=True)
        (volume / "DCIM" / "clip.MP4").write_bytes(os.urandom(1000))  # no serial in label or name
        failed = wait_for(lambda: (p := ports(live_server).get("NO_LABEL")) and p["state"] == "failed" and p)
        # the failure is for people: its reason, and what to do
        assert "serial" in failed["reason"]
        assert failed["advice"] == "redock"
        assert failed["station_name"] == "station-ports"
        # the recorder is taken away: the port is no longer failed
        for p in sorted(volume.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        volume.rmdir()
        wait_for(lambda: "NO_LABEL" not in ports(live_server))
    actions = [e["action"] for e in live_server.get("/api/v1/audit/entries", params={"limit": 500}).json()["items"]]
    assert "dock.failed" in actions


def test_refused_files_are_listed_with_their_reasons(tmp_path: Path, live_server: LiveServer) -> None:
    docks = tmp_path / "docks"
    docks.mkdir()
    settings = _settings(tmp_path, live_server, docks)
    staging = Recorder(tmp_path / "staging" / "ZFY_DSJ0001")
    staging.add(1, 10_000)
    os.symlink("/etc/passwd", staging.root / "DCIM" / "20261120" / "link.MP4")
    os.mkfifo(staging.root / "DCIM" / "pipe.MP4")
    with running_agent(settings):
        staging.root.rename(docks / "ZFY_DSJ0001")
        wait_for(lambda: ports(live_server).get("ZFY_DSJ0001", {}).get("state") == "done")
    refused = {r["path"]: r["reason"] for r in live_server.get("/api/v1/docks/refused").json()}
    assert any("link.MP4" in p for p in refused), refused
    assert any("pipe.MP4" in p for p in refused), refused
    assert all(reason for reason in refused.values())


def test_the_log_gets_one_line_per_file_when_output_is_not_a_terminal(tmp_path: Path, live_server: LiveServer) -> None:
    docks = tmp_path / "docks"
    docks.mkdir()
    settings = _settings(tmp_path, live_server, docks)
    staging = Recorder(tmp_path / "staging" / "ZFY_DSJ0001")
    for seq in (1, 2, 3):
        staging.add(seq, 20_000)
    with running_agent(settings) as out:
        staging.root.rename(docks / "ZFY_DSJ0001")
        wait_for(lambda: ports(live_server).get("ZFY_DSJ0001", {}).get("state") == "done")
        wait_for(lambda: "done" in out.getvalue().splitlines()[-1] if out.getvalue() else False, timeout=10)
    lines = out.getvalue().splitlines()
    assert sum("file " in line and "/3 done" in line for line in lines) == 3, lines
    assert any(line.startswith("dock DSJ0001") and "3 file(s)" in line for line in lines), lines
    assert not any("HTTP Request" in line for line in lines)


# --- the settle helper alone --------------------------------------------------------------------


def test_settling_waits_for_the_tree_to_hold_still(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    writer_done = threading.Event()

    def writer() -> None:
        for i in range(3):
            time.sleep(0.15)
            (root / f"f{i}").write_bytes(b"x" * (i + 1))
        writer_done.set()

    threading.Thread(target=writer).start()
    settled = wait_until_settled(root, quiet=0.5, timeout=10)
    assert settled.quiet and writer_done.is_set()
    assert {p for p, _, _ in settled.snapshot or ()} == {"f0", "f1", "f2"}


def test_an_empty_or_vanished_volume_never_counts_as_settled(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not wait_until_settled(empty, quiet=0.1, timeout=0.4).quiet
    assert wait_until_settled(tmp_path / "gone", quiet=0.1, timeout=0.4).gone


def test_arrived_lists_new_and_changed_files_not_removed_ones(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"1")
    before = snapshot(tmp_path)
    (tmp_path / "a").unlink()
    os.utime(tmp_path / "b", ns=(1, 1))
    (tmp_path / "c").write_bytes(b"1")
    assert arrived(before, snapshot(tmp_path)) == {"b", "c"}
