"""The Celery application's configuration, shared by the publisher (the API) and the worker.

Publishing needs no task code (``send_task`` by name), so this module imports none: the worker
(``background.worker``) binds the registry's tasks to an app made here.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from evidence_server.config import Settings


def make_celery(settings: Settings, beat_schedule: dict[str, dict[str, Any]] | None = None) -> Celery:
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
        beat_schedule=beat_schedule or {},  # `celery beat`: audit checkpoints, fixity sweeps
        # Redis: a task taken by a worker that died unacked is delivered again after this many seconds
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout_s,
            **settings.celery_broker_transport_options,
        },
        result_backend_transport_options={"visibility_timeout": settings.celery_visibility_timeout_s},
    )
    return app
