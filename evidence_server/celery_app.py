"""The Celery application for deployments with workers on Redis or RabbitMQ.

Workers run ``celery -A evidence_server.celery_app:celery_app worker``; each registered task is
wrapped so that a worker builds one ServerContext per process and calls the same function the
in-process dispatcher calls. Tasks take IDs and plain JSON only.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from evidence_server import media, media_derivatives  # noqa: F401  (registers tasks)
from evidence_server.cases import linking as _case_linking  # noqa: F401  (registers cases.auto_link_recording)
from evidence_server.config import Settings, get_settings
from evidence_server.context import ServerContext
from evidence_server.observability.logs import configure_logging
from evidence_server.schedule import beat_schedule  # registers the periodic tasks too
from evidence_server.tasks import REGISTRY


def make_celery(settings: Settings) -> Celery:
    app = Celery("custodia", broker=settings.broker_url, backend=settings.result_backend)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.celery_queue,
        beat_schedule=beat_schedule(settings),  # `celery beat`: audit checkpoints, fixity sweeps
        # Redis: a task taken by a worker that died unacked is delivered again after this many seconds
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout_s,
            **settings.celery_broker_transport_options,
        },
        result_backend_transport_options={"visibility_timeout": settings.celery_visibility_timeout_s},
    )
    return app


@setup_logging.connect  # type: ignore[untyped-decorator]
def _custodia_logging(**_kw: Any) -> None:
    """Workers and beat log like the API (text or JSON, CUSTODIA_LOG_FORMAT), not Celery's own way."""
    configure_logging(service="custodia-worker")


celery_app = make_celery(get_settings())
_ctx: ServerContext | None = None


def _context() -> ServerContext:
    global _ctx
    if _ctx is None:
        _ctx = ServerContext(get_settings())
    return _ctx


def _bind(name: str) -> None:
    fn = REGISTRY[name]

    @celery_app.task(name=name, bind=True, max_retries=5, default_retry_delay=10)
    def run(self: Any, *args: Any) -> Any:
        return fn(_context(), *args)


for _name in list(REGISTRY):
    _bind(_name)
