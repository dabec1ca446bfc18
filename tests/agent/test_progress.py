"""Progress reports: every change to the station's screen, at most ~2/s to the server, states always."""

from __future__ import annotations

from typing import Any

from ingest_agent.journal import TransferState
from ingest_agent.progress import DockProgress, ProgressReporter


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_server_gets_at_most_two_reports_a_second_but_every_state_change() -> None:
    sent: list[dict[str, Any]] = []
    shown: list[DockProgress] = []
    clock = Clock()
    reporter = ProgressReporter(
        DockProgress("t1", "DSJ0001", "102345", TransferState.DOCKED),
        send=lambda tid, body: sent.append(body),
        listener=shown.append,
        interval=0.5,
        clock=clock,
    )
    reporter.update(state=TransferState.COPYING, files_total=2, bytes_total=1000)
    reporter.flush()
    for _ in range(100):  # one second of byte counting, 100 blocks
        clock.now += 0.01
        reporter.add(bytes_copied=5, bytes_uploaded=5)
        reporter.flush()
    reporter.update(state=TransferState.DONE, files_done=2)
    reporter.flush()

    assert len(shown) == 102
    assert [b["state"] for b in sent] == ["copying", "copying", "copying", "done"]
    assert sent[-1] == {
        "state": "done",
        "files_total": 2,
        "files_done": 2,
        "bytes_total": 1000,
        "bytes_done": 500,
        "message": None,
    }


def test_nothing_is_sent_while_offline() -> None:
    sent: list[str] = []
    reporter = ProgressReporter(
        DockProgress("t1", "DSJ0001", "", TransferState.DOCKED), send=lambda tid, body: sent.append(body["state"])
    )
    reporter.online = False
    reporter.update(state=TransferState.COPYING)
    reporter.online = True
    reporter.update(state=TransferState.UPLOADING)
    reporter.flush()
    assert sent == ["uploading"]
