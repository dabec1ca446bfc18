"""A one-off task that meets an unreachable service (a partitioned worker host) is tried again, not lost.

Found by tests/production/test_hosts_can_die.py: a derivation that was reading its recording from S3
when the worker host was cut off failed for good, and the recording never got its thumbnail.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy.exc
from celery import Celery

from evidence_server.background import worker
from evidence_server.background.registry import Task


class Retried(Exception):
    pass


def bound(monkeypatch: pytest.MonkeyPatch, t: Task) -> tuple[Any, list[dict[str, Any]]]:
    """The task as a worker binds it; its ``retry`` records how it was asked to retry, and raises."""
    app = Celery("custodia-test")
    monkeypatch.setattr(worker, "_context", lambda: None)
    worker._bind(app, t)
    task = app.tasks[t.name]
    asked: list[dict[str, Any]] = []

    def retry(**kw: Any) -> None:
        asked.append(kw)
        raise Retried()

    monkeypatch.setattr(task, "retry", retry, raising=False)
    return task, asked


def failing(exc: BaseException, calls: list[Any]) -> Any:
    def fn(_ctx: Any, arg: Any) -> str:
        calls.append(arg)
        raise exc

    return fn


UNREACHABLE = [
    sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection to server at 10.0.0.1 failed")),
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3:5000/evidence"),
    botocore.exceptions.ReadTimeoutError(endpoint_url="http://s3:5000/evidence"),
    ConnectionResetError("reset by peer"),
    TimeoutError("timed out"),
]


@pytest.mark.parametrize("exc", UNREACHABLE, ids=lambda e: type(e).__name__)
def test_a_one_off_task_is_tried_again_after_an_unreachable_service(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    calls: list[Any] = []
    task, asked = bound(monkeypatch, Task(f"test.derive.{type(exc).__name__}", failing(exc, calls)))
    task.push_request(retries=3)
    with pytest.raises(Retried):
        task.run(7)
    assert calls == [7]
    assert asked == [{"exc": exc, "countdown": 8.0, "max_retries": worker.RETRY_MAX}]


def test_other_errors_fail_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    task, asked = bound(monkeypatch, Task("test.bad", failing(ValueError("a real bug"), calls)))
    with pytest.raises(ValueError, match="a real bug"):
        task.run(1)
    assert (calls, asked) == ([1], [])


def test_periodic_tasks_wait_for_their_next_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    task, asked = bound(monkeypatch, Task("test.sweep", failing(ConnectionRefusedError(), calls), every=lambda s: 10))
    with pytest.raises(ConnectionRefusedError):
        task.run(1)
    assert (calls, asked) == ([1], [])


def test_attempts_back_off_to_a_minute() -> None:
    assert [worker.retry_delay(n) for n in (0, 1, 5, 6, 20)] == [1, 2, 32, 60, 60]
    assert sum(worker.retry_delay(n) for n in range(worker.RETRY_MAX)) >= 15 * 60  # a long partition
