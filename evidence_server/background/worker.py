"""The Celery app that workers and beat run: ``celery -A evidence_server.background.worker:celery_app``.

Every registered task is bound under its own name; a worker builds one ServerContext per process
and calls the same function the in-process dispatcher calls. Tasks take IDs and plain JSON only.
"""

from __future__ import annotations

import logging
from typing import Any

import botocore.exceptions
import sqlalchemy.exc
from celery import Celery
from celery.signals import setup_logging

from evidence_server.background.celery_config import make_celery
from evidence_server.background.registry import Task, discover
from evidence_server.background.scheduler import beat_schedule
from evidence_server.config import get_settings
from evidence_server.context import ServerContext
from evidence_server.observability.logs import configure_logging


@setup_logging.connect  # type: ignore[untyped-decorator]
def _custodia_logging(**_kw: Any) -> None:
    """Workers and beat log like the API (text or JSON, CUSTODIA_LOG_FORMAT), not Celery's own way."""
    configure_logging(service="custodia-worker")


log = logging.getLogger(__name__)

_ctx: ServerContext | None = None

#: A service out of reach for a while (a partition, a restart, a host that died): the database, S3, any
#: socket. A task that meets one is tried again later instead of failing for good, since a failed
#: one-off task (a probe, a derivation sent when a recording arrived) is never sent again. Anything
#: else fails at once. Periodic tasks are not retried: beat sends them again at their next interval.
TRANSIENT: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    botocore.exceptions.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError
    botocore.exceptions.ReadTimeoutError,
    ConnectionError,
    TimeoutError,
)
#: about 20 minutes of attempts in all (1, 2, 4, ... 60 s apart)
RETRY_MAX = 25


def retry_delay(retries: int) -> float:
    return float(min(2**retries, 60))


def _context() -> ServerContext:
    global _ctx
    if _ctx is None:
        _ctx = ServerContext(get_settings())
    return _ctx


def _bind(app: Celery, t: Task) -> None:
    def run(_self: Any, *args: Any) -> Any:
        try:
            return t(_context(), *args)
        except TRANSIENT as exc:
            if t.every is not None:
                raise
            retries = int(_self.request.retries or 0)
            log.warning("task %s%r: %s; trying again (attempt %d)", t.name, args, exc, retries + 2)
            # tasks are idempotent: running again what half ran changes nothing
            raise _self.retry(exc=exc, countdown=retry_delay(retries), max_retries=RETRY_MAX) from exc

    app.task(name=t.name, bind=True, max_retries=RETRY_MAX)(run)


def make_worker_app() -> Celery:
    settings = get_settings()
    app = make_celery(settings, beat_schedule(settings))
    for t in discover().values():
        _bind(app, t)
    return app


celery_app = make_worker_app()
