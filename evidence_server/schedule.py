"""Periodic jobs: signed audit checkpoints, the fixity sweep, retention, compliance, upload expiry.

With Celery, ``celery beat`` runs them (``make_celery`` puts them in ``beat_schedule``). With
in-process tasks, a small thread started by the app's lifespan runs them when
``Settings.scheduler_enabled`` says so (on by default, off when ``environment`` is ``test``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from evidence_server.audit import tasks as _audit_tasks  # noqa: F401  (registers audit.checkpoint)
from evidence_server.compliance import jobs as _compliance  # noqa: F401  (registers compliance.full_scan)
from evidence_server.config import Settings
from evidence_server.fixity import service as _fixity  # noqa: F401  (registers fixity.sweep)
from evidence_server.retention import tasks as _retention  # noqa: F401  (registers retention.apply)
from evidence_server.tasks import REGISTRY
from evidence_server.uploads import expiry as _uploads  # noqa: F401  (registers uploads.expire)

log = logging.getLogger(__name__)


def periodic_jobs(settings: Settings) -> dict[str, float]:
    """Task name → interval in seconds; a non-positive interval switches a job off."""
    jobs = {
        "audit.checkpoint": settings.audit_checkpoint_interval_s,
        "fixity.sweep": settings.fixity_interval_s,
        "retention.apply": settings.retention_interval_s,
        "compliance.full_scan": settings.compliance_scan_interval_s,
        "uploads.expire": settings.upload_sweep_interval_s if settings.upload_expiry_hours > 0 else 0,
    }
    return {name: float(every) for name, every in jobs.items() if every > 0}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: {"task": name, "schedule": every} for name, every in periodic_jobs(settings).items()}


class Scheduler:
    """Runs each periodic job in one background thread, one at a time, first after one interval."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        jobs = periodic_jobs(self.ctx.settings)
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
