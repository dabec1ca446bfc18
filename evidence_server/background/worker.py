"""The Celery app that workers and beat run: ``celery -A evidence_server.background.worker:celery_app``.

Every registered task is bound under its own name; a worker builds one ServerContext per process
and calls the same function the in-process dispatcher calls. Tasks take IDs and plain JSON only.
"""

from __future__ import annotations

from typing import Any

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


_ctx: ServerContext | None = None


def _context() -> ServerContext:
    global _ctx
    if _ctx is None:
        _ctx = ServerContext(get_settings())
    return _ctx


def _bind(app: Celery, t: Task) -> None:
    def run(_self: Any, *args: Any) -> Any:
        return t(_context(), *args)

    app.task(name=t.name, bind=True, max_retries=5, default_retry_delay=10)(run)


def make_worker_app() -> Celery:
    settings = get_settings()
    app = make_celery(settings, beat_schedule(settings))
    for t in discover().values():
        _bind(app, t)
    return app


celery_app = make_worker_app()
