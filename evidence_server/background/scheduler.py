"""Periodic tasks: signed audit checkpoints, the fixity sweep, retention, compliance, upload expiry.

Which tasks are periodic, and how often, is said where each task is registered (``every=``). With
Celery, ``celery beat`` runs them (``beat_schedule``). With in-process tasks, a small thread started
by the app's lifespan runs them when ``Settings.scheduler_enabled`` says so (on by default, off when
``environment`` is ``test``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from evidence_server.background.registry import REGISTRY, periodic

if TYPE_CHECKING:
    from evidence_server.config import Settings
    from evidence_server.context import ServerContext

log = logging.getLogger(__name__)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: {"task": name, "schedule": every} for name, every in periodic(settings).items()}


class Scheduler:
    """Runs each periodic task in one background thread, one at a time, first after one interval."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        jobs = periodic(self.ctx.settings)
        if jobs:
            self._thread = threading.Thread(target=self._run, args=(jobs,), name="custodia-scheduler", daemon=True)
            self._thread.start()

    def _run(self, jobs: dict[str, float]) -> None:
        due = {name: time.monotonic() + every for name, every in jobs.items()}
        while not self._stop.is_set():
            name = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[name] - time.monotonic())):
                return
            try:
                REGISTRY[name](self.ctx)
            except Exception:
                log.exception("periodic job %s failed", name)
            due[name] = time.monotonic() + jobs[name]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
