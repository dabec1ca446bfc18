"""The in-memory abuse counters, on a fake clock."""

from __future__ import annotations

from evidence_server.limits import MAX_KEYS, WindowCounter
from evidence_server.openapi_errors import expected_errors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_counter_refuses_over_the_limit_and_forgets_old_events() -> None:
    clock = Clock()
    c = WindowCounter(3, 60, clock)
    assert [c.take("a") for _ in range(3)] == [None, None, None]
    assert c.take("a") == 60 and c.take("b") is None  # per key
    clock.now += 30
    assert c.retry_after("a") == 30
    clock.now += 30.5
    assert c.retry_after("a") is None and c.take("a") is None


def test_hits_count_without_asking_and_a_zero_limit_is_off() -> None:
    clock = Clock()
    c = WindowCounter(2, 10, clock)
    c.hit("x")
    c.hit("x")
    assert c.retry_after("x") == 10
    c.clear("x")
    assert c.retry_after("x") is None
    off = WindowCounter(0, 10, clock)
    assert all(off.take("y") is None for _ in range(100))


def test_a_flood_of_keys_keeps_memory_bounded() -> None:
    c = WindowCounter(1, 60, Clock())
    for i in range(MAX_KEYS + 100):
        c.hit(i)
    assert len(c._events) <= MAX_KEYS


def test_error_answers_follow_what_a_route_is() -> None:
    assert expected_errors({"GET"}, "/healthz", frozenset({"public"})) == {422, 429, 503}
    assert {401, 403, 404, 409} <= expected_errors({"GET"}, "/api/v1/recordings", frozenset({"officer"}))
    assert {400, 413, 429} <= expected_errors({"POST"}, "/api/v1/uploads", frozenset({"station"}))
