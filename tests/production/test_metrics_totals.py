"""/metrics at a province's size: the totals over every recording and upload are read at most once per
``CUSTODIA_METRICS_TOTALS_MAX_AGE_S``, one read at a time, and the age of what is served is given.

At 10M recordings that read took 3.2 s (issue 18): a scrape every 15 s from each of several Prometheus
servers kept a core of the database busy. These tests count the statements that read the recordings
table, on both databases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.observability import metrics as metrics_module


@dataclass
class Watched:
    """A process's metrics with a clock of the test's own, and the reads of the totals counted."""

    ctx: ServerContext
    seen: list[str] = field(default_factory=list)  # the threads whose scrape read the totals, in turn
    transfers: list[int] = field(default_factory=lambda: [0])  # reads of the transfers (a small table)
    slow: threading.Event | None = None  # set: a read of the totals waits for it
    clock: list[float] = field(default_factory=lambda: [1000.0])


@pytest.fixture
def watch(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], Watched]]:
    made: list[Watched] = []

    def make(max_age: float) -> Watched:
        settings = Settings(
            data_dir=tmp_path / "server",
            database_url=database_url,
            environment="test",
            metrics_totals_max_age_s=max_age,
        )
        w = Watched(ServerContext(settings))
        made.append(w)
        monkeypatch.setattr(metrics_module.time, "monotonic", lambda: w.clock[0])

        @event.listens_for(w.ctx.engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "FROM transfers" in statement:
                w.transfers[0] += 1
            if "FROM recordings" in statement and "fixity_state" in statement:
                w.seen.append(threading.current_thread().name)
                if w.slow is not None:
                    w.slow.wait(10)

        return w

    yield make
    for w in made:
        if w.slow is not None:
            w.slow.set()
        w.ctx.close()


def scrape(ctx: ServerContext) -> dict[str, float]:
    text = generate_latest(ctx.metrics).decode()
    return {
        s.name + ("" if not s.labels else str(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_totals_are_read_once_per_max_age_and_say_how_old_they_are(watch: Callable[[float], Watched]) -> None:
    w = watch(60)
    first = scrape(w.ctx)
    assert len(w.seen) == 1
    assert first["custodia_recordings"] == 0 and first["custodia_metrics_totals_age_seconds"] == 0
    w.clock[0] += 59.5
    second = scrape(w.ctx)
    assert len(w.seen) == 1, "read again within the max age"
    assert second["custodia_metrics_totals_age_seconds"] == 59.5
    assert second["custodia_recordings"] == 0  # served from the first read, with the rest read live
    assert w.transfers[0] == 2, "the small tables are read at every scrape"
    w.clock[0] += 0.5
    third = scrape(w.ctx)
    assert len(w.seen) == 2, "not read again once the max age passed"
    assert third["custodia_metrics_totals_age_seconds"] == 0
    assert all(v == 0 for k, v in third.items() if k.startswith("custodia_metrics_errors"))


def test_max_age_zero_reads_them_at_every_scrape(watch: Callable[[float], Watched]) -> None:
    w = watch(0)
    for _ in range(3):
        scrape(w.ctx)
    assert len(w.seen) == 3


def test_a_scrape_during_a_read_is_answered_with_the_figures_before_and_only_one_reads(
    watch: Callable[[float], Watched],
) -> None:
    w = watch(60)
    scrape(w.ctx)
    assert len(w.seen) == 1
    w.clock[0] += 61
    w.slow = threading.Event()
    results: dict[str, dict[str, float]] = {}
    slow = threading.Thread(target=lambda: results.__setitem__("slow", scrape(w.ctx)), name="slow-scrape")
    slow.start()
    deadline = time.time() + 10
    while len(w.seen) < 2 and time.time() < deadline:  # the slow scrape is inside its read
        time.sleep(0.01)
    assert w.seen == ["MainThread", "slow-scrape"]
    others = [threading.Thread(target=lambda i=i: results.__setitem__(f"o{i}", scrape(w.ctx))) for i in range(4)]
    for t in others:
        t.start()
    for t in others:
        t.join(5)
    assert not any(t.is_alive() for t in others), "a scrape waited for another's read"
    assert all(results[f"o{i}"]["custodia_metrics_totals_age_seconds"] == 61 for i in range(4))
    assert len(w.seen) == 2, "several scrapes read the totals at once"
    w.slow.set()
    slow.join(10)
    assert results["slow"]["custodia_metrics_totals_age_seconds"] == 0
    assert scrape(w.ctx)["custodia_metrics_totals_age_seconds"] == 0 and len(w.seen) == 2


def test_the_first_scrapes_wait_for_one_read(watch: Callable[[float], Watched]) -> None:
    w = watch(60)
    w.slow = threading.Event()
    results: dict[int, dict[str, float]] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, scrape(w.ctx))) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert len(w.seen) == 1 and not results, "a first scrape answered without the totals"
    w.slow.set()
    for t in threads:
        t.join(10)
    assert len(w.seen) == 1
    assert sorted(results) == [0, 1, 2] and all(r["custodia_recordings"] == 0 for r in results.values())
