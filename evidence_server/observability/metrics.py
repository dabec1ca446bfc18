"""Prometheus metrics, read from the database at each scrape.

Every API process answers ``/metrics`` with the same numbers, because they come from the shared
database and broker rather than from per-process counters: scrape any one of them (or all, behind
the load balancer) and nothing needs Prometheus' multi-process mode.

The totals over recordings and uploads (``custodia_recordings``, bytes, fixity states, uploads by state)
read every row: 3.2 s a scrape at 10M recordings (issue 18). Each process reads them at most once per
``CUSTODIA_METRICS_TOTALS_MAX_AGE_S`` (60 s; 0 reads them at every scrape), one scrape at a time, and
``custodia_metrics_totals_age_seconds`` says how old the figures served are. A scrape that comes while
another reads them is answered with the figures before, not made to wait. The rest (transfers, incidents,
stations, the task queue) is read at every scrape: small tables.

``violation_source`` is the hook for the compliance engine: each registered function returns
``(kind, count)`` pairs and is exported as ``custodia_violations{source, kind}``. Until the engine
exists, integrity incidents (digest mismatches, fixity failures, orphans) are the one source.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.fleet import rules as fleet_rules
from evidence_server.fleet.service import fleet_health
from evidence_server.recordings.models import FIXITY_BAD, Recording
from evidence_server.transfers.models import Transfer
from evidence_server.uploads.models import IntegrityIncident, Upload

log = logging.getLogger(__name__)

ViolationSource = Callable[[Session], Iterable[tuple[str, int]]]
VIOLATION_SOURCES: dict[str, ViolationSource] = {}


def violation_source(name: str) -> Callable[[ViolationSource], ViolationSource]:
    """Register ``fn(session) -> [(kind, count), …]`` as a source of ``custodia_violations``."""

    def register(fn: ViolationSource) -> ViolationSource:
        VIOLATION_SOURCES[name] = fn
        return fn

    return register


@violation_source("integrity")
def integrity_incidents_by_kind(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(select(IntegrityIncident.kind, func.count()).group_by(IntegrityIncident.kind))
    return [(kind, int(n)) for kind, n in rows]


@lru_cache(maxsize=4)
def _celery_for(broker_url: str) -> Any:
    from celery import Celery

    return Celery("custodia-metrics", broker=broker_url, set_as_current=False)


def task_queue_depth(ctx: ServerContext, pending: list[Any]) -> int:
    """Tasks waiting: messages in the Celery queue, or this process's unfinished in-process tasks."""
    settings = ctx.settings
    if settings.task_mode != "celery":
        return sum(1 for f in pending if not f.done())
    app = _celery_for(settings.broker_url)
    with app.connection_for_read(connect_timeout=2) as conn:
        channel = conn.default_channel
        try:
            return int(channel.queue_declare(queue=settings.celery_queue, passive=True).message_count)
        except Exception as exc:  # noqa: BLE001  (a queue nobody declared yet holds nothing)
            if "NOT_FOUND" in str(exc) or "404" in str(exc) or "no queue" in str(exc).lower():
                return 0
            raise


class CustodiaCollector(Collector):
    def __init__(self, ctx: ServerContext, pending: Callable[[], list[Any]]) -> None:
        self.ctx = ctx
        self.pending = pending
        self._totals: tuple[float, list[Metric]] | None = None  # (monotonic time their read began, the metrics)
        self._reading_totals = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily("custodia_metrics_errors", "Parts of this scrape that failed (1)", labels=["part"])
        parts: list[Callable[[], Iterable[Metric]]] = [
            self._records,
            self._totals_by_age,
            self._fleet,
            self._violations,
            self._queue,
        ]
        for part in parts:
            try:
                yield from list(part())
                errors.add_metric([part.__name__.strip("_")], 0)
            except Exception:
                log.exception("metrics: %s failed", part.__name__)
                errors.add_metric([part.__name__.strip("_")], 1)
        yield errors

    def _records(self) -> Iterator[Metric]:
        with self.ctx.sessionmaker() as session:
            by_state = dict(session.execute(select(Transfer.state, func.count()).group_by(Transfer.state)).all())
            incidents = dict(
                session.execute(select(IntegrityIncident.kind, func.count()).group_by(IntegrityIncident.kind)).all()
            )
        yield CounterMetricFamily(
            "custodia_transfers", "Transfers (dockings) opened by stations", value=sum(by_state.values())
        )
        g = GaugeMetricFamily("custodia_transfers_by_state", "Transfers by their current state", labels=["state"])
        for state, n in sorted(by_state.items()):
            g.add_metric([state], n)
        yield g
        c = CounterMetricFamily("custodia_integrity_incidents", "Integrity incidents by kind", labels=["kind"])
        for kind, n in sorted(incidents.items()):
            c.add_metric([kind], n)
        yield c

    def _totals_by_age(self) -> Iterator[Metric]:
        """The totals over every recording and upload, read again once they are older than the setting."""
        max_age = self.ctx.settings.metrics_totals_max_age_s
        held = self._totals
        stale = held is None or time.monotonic() - held[0] >= max_age
        # the first scrape waits for the first read; later ones take the figures before while one reads
        if stale and self._reading_totals.acquire(blocking=held is None):
            try:
                held = self._totals
                if held is None or time.monotonic() - held[0] >= max_age:
                    began = time.monotonic()
                    held = (began, list(self._read_totals()))
                    self._totals = held
            finally:
                self._reading_totals.release()
        assert held is not None
        yield from held[1]
        yield GaugeMetricFamily(
            "custodia_metrics_totals_age_seconds",
            "How old the totals over recordings and uploads are (read at most once per "
            "CUSTODIA_METRICS_TOTALS_MAX_AGE_S)",
            value=round(time.monotonic() - held[0], 3),
        )

    def _read_totals(self) -> Iterator[Metric]:
        with self.ctx.sessionmaker() as session:
            uploads = {
                state: (n, b)
                for state, n, b in session.execute(
                    select(Upload.state, func.count(), func.coalesce(func.sum(Upload.length), 0)).group_by(Upload.state)
                )
            }
            # one pass over the recordings for both figures (at 10M recordings each pass took ~1.5 s a scrape)
            by_fixity = session.execute(
                select(Recording.fixity_state, func.count(), func.coalesce(func.sum(Recording.size), 0)).group_by(
                    Recording.fixity_state
                )
            ).all()
        fixity = {state: n for state, n, _ in by_fixity}
        held, held_bytes = sum(fixity.values()), sum(int(b) for _, _, b in by_fixity)
        verified_n, verified_bytes = uploads.get("verified", (0, 0))
        yield CounterMetricFamily("custodia_verified_uploads", "Uploads received and verified", value=verified_n)
        yield CounterMetricFamily(
            "custodia_verified_bytes",
            "Bytes received and verified against both fingerprints",
            value=int(verified_bytes),
        )
        yield CounterMetricFamily(
            "custodia_rejected_uploads",
            "Uploads rejected on a fingerprint mismatch",
            value=uploads.get("rejected", (0, 0))[0],
        )
        yield GaugeMetricFamily(
            "custodia_uploads_receiving", "Uploads begun and not finished", value=uploads.get("receiving", (0, 0))[0]
        )
        yield GaugeMetricFamily("custodia_recordings", "Verified recordings held", value=held)
        yield GaugeMetricFamily("custodia_recording_bytes", "Bytes of verified recordings held", value=int(held_bytes))
        g = GaugeMetricFamily("custodia_fixity_recordings", "Recordings by fixity state", labels=["state"])
        for state in sorted({"unchecked", "ok", *FIXITY_BAD, *fixity}):
            g.add_metric([state], fixity.get(state, 0))
        yield g
        yield GaugeMetricFamily(
            "custodia_fixity_failures",
            "Recordings failing fixity (bytes changed or missing)",
            value=sum(fixity.get(s, 0) for s in FIXITY_BAD),
        )

    def _violations(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "custodia_violations", "Violations by source and kind (the compliance hook)", labels=["source", "kind"]
        )
        with self.ctx.sessionmaker() as session:
            for source, fn in sorted(VIOLATION_SOURCES.items()):
                for kind, n in fn(session):
                    g.add_metric([source, kind], n)
        yield g

    def _fleet(self) -> Iterator[Metric]:
        now = utcnow()
        with self.ctx.sessionmaker() as session:
            health = fleet_health(session, fleet_rules.FleetRules.from_settings(self.ctx.settings), now=now)
        spool = GaugeMetricFamily(
            "custodia_station_spool_bytes", "Bytes waiting in a station's spool", labels=["station"]
        )
        free = GaugeMetricFamily(
            "custodia_station_free_bytes", "Free bytes on a station's spool disk", labels=["station"]
        )
        age = GaugeMetricFamily(
            "custodia_station_last_seen_seconds", "Seconds since a station's last heartbeat", labels=["station"]
        )
        alert = GaugeMetricFamily(
            "custodia_station_alert", "A station alert is raised (1) or not (0)", labels=["station", "kind"]
        )
        backlog = 0
        for h in health:
            name = h.station.name
            if h.spool_bytes is not None:
                spool.add_metric([name], h.spool_bytes)
                backlog += h.spool_bytes
            if h.free_bytes is not None:
                free.add_metric([name], h.free_bytes)
            if h.station.last_seen_at is not None:
                age.add_metric([name], (now - h.station.last_seen_at).total_seconds())
            raised = {a.kind for a in h.alerts}
            for kind in fleet_rules.KINDS:
                alert.add_metric([name, kind], 1 if kind in raised else 0)
        yield from (spool, free, age, alert)
        yield GaugeMetricFamily("custodia_station_backlog_bytes", "Bytes waiting in all station spools", value=backlog)

    def _queue(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("custodia_task_queue_depth", "Background tasks waiting", labels=["queue"])
        g.add_metric(
            [self.ctx.settings.celery_queue if self.ctx.settings.task_mode == "celery" else "inprocess"],
            task_queue_depth(self.ctx, self.pending()),
        )
        yield g


def make_registry(ctx: ServerContext, pending: Callable[[], list[Any]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CustodiaCollector(ctx, pending))
    return registry
