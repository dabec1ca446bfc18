"""Sending background tasks: to Celery workers, or to a local thread pool (the embedded default).

Tasks take IDs and plain JSON and are idempotent: a retry or a duplicate delivery changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from evidence_server.background.registry import REGISTRY, discover

if TYPE_CHECKING:
    from celery import Celery

    from evidence_server.context import ServerContext

log = logging.getLogger(__name__)

#: How a publish to the broker is retried before the task is held back (a request must not hang on it).
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
#: Tasks held back while the broker is down, at most; beyond, the oldest are dropped (and logged).
MAX_HELD = 100_000


class Dispatcher:
    """Sends tasks to Celery, or runs them on a local thread pool.

    With Celery, a broker that cannot be reached does not fail the request that sent the task: the
    task is held in memory and a background thread publishes the held tasks, in order, once the
    broker answers again. Tasks are idempotent, so a publish that did arrive but was retried anyway
    changes nothing.
    """

    def __init__(self, ctx: ServerContext) -> None:
        discover()
        self.ctx = ctx
        self._pool: ThreadPoolExecutor | None = None
        self._celery: Celery | None = None
        self.pending: list[Future[Any]] = []
        self.held: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._republisher: threading.Thread | None = None
        self.retry_interval = 1.0

    def send(self, name: str, *args: Any) -> None:
        if name not in REGISTRY:
            raise KeyError(f"unknown task {name!r}")
        if self.ctx.settings.task_mode == "celery":
            with self._held_lock:
                if self.held:  # the broker is down: keep the order, do not wait on it again
                    self._hold(name, args)
                    return
            try:
                self._publish(name, args)
            except Exception as exc:  # noqa: BLE001  (kombu/redis/amqp errors alike: the broker is unreachable)
                log.warning("broker unreachable, task %s%r held until it is back: %s", name, args, exc)
                with self._held_lock:
                    self._hold(name, args)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="custodia-task")
        self.pending = [f for f in self.pending if not f.done()]
        self.pending.append(self._pool.submit(self._run, name, args))

    def _publish(self, name: str, args: tuple[Any, ...]) -> None:
        if self._celery is None:
            # imported on first use: the embedded, in-process default never loads Celery
            from evidence_server.background.celery_config import make_celery

            self._celery = make_celery(self.ctx.settings)
        self._celery.send_task(name, args=list(args), retry=True, retry_policy=PUBLISH_RETRY)

    def _hold(self, name: str, args: tuple[Any, ...]) -> None:
        """Keep a task for later (the caller holds ``_held_lock``)."""
        if len(self.held) >= MAX_HELD:
            dropped = self.held.popleft()
            log.error("too many tasks held while the broker is down; dropped %s%r", *dropped)
        self.held.append((name, args))
        if self._republisher is None:
            self._republisher = threading.Thread(target=self._republish, name="custodia-republish", daemon=True)
            self._republisher.start()

    def _republish(self) -> None:
        """Publish the held tasks, oldest first, as soon as the broker takes them again."""
        delay = self.retry_interval
        while not self._stop.wait(delay):
            while True:
                with self._held_lock:
                    if not self.held:
                        self._republisher = None  # under the lock: the next _hold starts a new thread
                        return
                    name, args = self.held[0]
                try:
                    self._publish(name, args)
                except Exception as exc:  # noqa: BLE001
                    log.info("broker still unreachable (%d task(s) held): %s", len(self.held), exc)
                    delay = min(delay * 2, 30.0)
                    break
                with self._held_lock:
                    self.held.popleft()
                delay = self.retry_interval

    def _run(self, name: str, args: tuple[Any, ...]) -> Any:
        try:
            return REGISTRY[name](self.ctx, *args)
        except Exception:
            log.exception("task %s%r failed", name, args)
            raise

    def drain(self, timeout: float = 60.0) -> None:
        """Wait for the in-process tasks sent so far (tests and clean shutdown)."""
        for f in list(self.pending):
            f.exception(timeout=timeout)

    def shutdown(self) -> None:
        self._stop.set()
        if self.held:
            log.error(
                "stopping with %d task(s) never published (broker down): %s", len(self.held), list(self.held)[:20]
            )
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
