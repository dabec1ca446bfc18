"""When a station needs attention: pure functions over its heartbeat history, no I/O.

- ``silent``: no heartbeat for longer than ``silent_after`` (an agent heartbeats every minute);
- ``spool_growing``: over the last ``growth_window`` the spool never shrank between two heartbeats
  and grew by at least ``growth_min_bytes``: recordings come in and none leave, so uploads are stuck;
- ``low_disk``: the station's spool disk has less than ``low_free_bytes`` free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

SILENT = "silent"
SPOOL_GROWING = "spool_growing"
LOW_DISK = "low_disk"
KINDS = (SILENT, SPOOL_GROWING, LOW_DISK)


@dataclass(frozen=True)
class Sample:
    at: datetime
    spool_bytes: int | None
    free_bytes: int | None


@dataclass(frozen=True)
class FleetRules:
    silent_after: timedelta = timedelta(minutes=10)
    growth_window: timedelta = timedelta(hours=1)
    growth_min_bytes: int = 1024**3
    growth_min_samples: int = 4
    low_free_bytes: int = 10 * 1024**3

    @classmethod
    def from_settings(cls, settings: Any) -> FleetRules:
        return cls(
            silent_after=timedelta(seconds=settings.fleet_silent_after_s),
            growth_window=timedelta(seconds=settings.fleet_growth_window_s),
            growth_min_bytes=settings.fleet_growth_min_bytes,
            growth_min_samples=settings.fleet_growth_min_samples,
            low_free_bytes=settings.fleet_low_free_bytes,
        )


@dataclass(frozen=True)
class Alert:
    kind: str
    since: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)


def silent(last_seen: datetime | None, enrolled_at: datetime | None, now: datetime, rules: FleetRules) -> Alert | None:
    """Silent since its last heartbeat (or since enrolment, if it never sent one)."""
    reference = last_seen or enrolled_at
    if reference is None or now - reference <= rules.silent_after:
        return None
    return Alert(SILENT, reference, {"seconds": int((now - reference).total_seconds())})


def spool_growing(samples: Sequence[Sample], now: datetime, rules: FleetRules) -> Alert | None:
    """The spool kept growing over the whole window (never shrank) by at least the threshold."""
    window = sorted(
        (s for s in samples if s.spool_bytes is not None and now - s.at <= rules.growth_window), key=lambda s: s.at
    )
    if len(window) < rules.growth_min_samples:
        return None
    if any((b.spool_bytes or 0) < (a.spool_bytes or 0) for a, b in pairwise(window)):
        return None
    grew = (window[-1].spool_bytes or 0) - (window[0].spool_bytes or 0)
    if grew < rules.growth_min_bytes:
        return None
    return Alert(
        SPOOL_GROWING, window[0].at, {"grew_bytes": grew, "spool_bytes": window[-1].spool_bytes, "samples": len(window)}
    )


def low_disk(latest: Sample | None, rules: FleetRules) -> Alert | None:
    if latest is None or latest.free_bytes is None or latest.free_bytes >= rules.low_free_bytes:
        return None
    return Alert(LOW_DISK, latest.at, {"free_bytes": latest.free_bytes})


def station_alerts(
    samples: Sequence[Sample],
    *,
    last_seen: datetime | None,
    enrolled_at: datetime | None,
    revoked: bool,
    now: datetime,
    rules: FleetRules,
) -> list[Alert]:
    """Every alert for one station, in a fixed order. A revoked or never-enrolled station has none."""
    if revoked or enrolled_at is None:
        return []
    latest = max(samples, key=lambda s: s.at) if samples else None
    found = (silent(last_seen, enrolled_at, now, rules), spool_growing(samples, now, rules), low_disk(latest, rules))
    return [a for a in found if a is not None]


def growth(samples: Sequence[Sample], now: datetime, window: timedelta) -> int | None:
    """Spool bytes gained (negative: drained) over ``window``: the trend the fleet page shows."""
    recent = sorted((s for s in samples if s.spool_bytes is not None and now - s.at <= window), key=lambda s: s.at)
    if len(recent) < 2:
        return None
    return (recent[-1].spool_bytes or 0) - (recent[0].spool_bytes or 0)
