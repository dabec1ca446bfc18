"""Progress of one docking: counted locally, shown on the station, reported to the server (≤ ~2/s)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ingest_agent.journal import TransferState

log = logging.getLogger(__name__)

#: Dock states as the server's progress API names them.
SERVER_STATE = {
    TransferState.DOCKED: "copying",
    TransferState.REGISTERED: "copying",
    TransferState.COPYING: "copying",
    TransferState.UPLOADING: "uploading",
    TransferState.COMPLETING: "uploading",
    TransferState.RECEIPTED: "done",
    TransferState.DONE: "done",
    TransferState.FAILED: "failed",
    TransferState.WAITING: "waiting",
    TransferState.INTERRUPTED: "interrupted",
}


@dataclass(frozen=True)
class DockProgress:
    transfer_id: str
    serial: str
    officer: str
    state: str
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_copied: int = 0
    bytes_uploaded: int = 0
    message: str = ""

    def server_body(self) -> dict[str, Any]:
        return {
            "state": SERVER_STATE.get(self.state, "waiting"),
            "files_total": self.files_total,
            "files_done": self.files_done,
            "bytes_total": self.bytes_total,
            "bytes_done": self.bytes_uploaded,
            "message": self.message or None,
        }


Listener = Callable[[DockProgress], None]


class ProgressReporter:
    """Counts bytes and files; tells listeners at once and the server at most every ``interval``.

    A state change is always reported. Reports go to the server from a background thread, newest
    first and never queued up, so a slow server never slows the copy. Thread-safe: the copier
    and the uploader of one docking both count here.
    """

    def __init__(
        self,
        progress: DockProgress,
        *,
        send: Callable[[str, dict[str, Any]], None] | None,
        listener: Listener | None = None,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._p = progress
        self._send = send
        self._listener = listener
        self._interval = interval
        self._clock = clock
        self._last_sent = float("-inf")
        self._lock = threading.Lock()
        self._outbox: DockProgress | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.online = send is not None

    @property
    def current(self) -> DockProgress:
        return self._p

    def update(self, *, force: bool = False, **changes: Any) -> None:
        self._change(lambda _: changes, force)

    def add(self, **deltas: int) -> None:
        self._change(lambda p: {k: getattr(p, k) + v for k, v in deltas.items()}, False)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the last report has gone out (or failed)."""
        self._idle.wait(timeout)

    def _change(self, changes_of: Callable[[DockProgress], dict[str, Any]], force: bool) -> None:
        with self._lock:
            changes = changes_of(self._p)
            state_changed = "state" in changes and changes["state"] != self._p.state
            self._p = replace(self._p, **changes)
            now = self._clock()
            due = (force or state_changed or now - self._last_sent >= self._interval) and self.online
            if due:
                self._last_sent = now
            snapshot = self._p
        if self._listener:
            self._listener(snapshot)
        if due and self._send is not None:
            self._post(snapshot)

    def _post(self, snapshot: DockProgress) -> None:
        with self._lock:
            self._outbox = snapshot
            if not self._idle.is_set():
                return  # the sender is busy; it takes this newest snapshot next
            self._idle.clear()
        threading.Thread(target=self._drain, name="progress-report", daemon=True).start()

    def _drain(self) -> None:
        assert self._send is not None
        while True:
            with self._lock:
                snapshot, self._outbox = self._outbox, None
                if snapshot is None:
                    self._idle.set()
                    return
            try:
                self._send(snapshot.transfer_id, snapshot.server_body())
            except Exception:  # progress is best effort; the journal holds the truth
                log.warning("progress report for %s failed", snapshot.transfer_id, exc_info=True)
