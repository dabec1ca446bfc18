"""The fleet rules, as pure functions over heartbeat samples: no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evidence_server.fleet.rules import FleetRules, Sample, growth, station_alerts

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
GiB = 1024**3
RULES = FleetRules(
    silent_after=timedelta(minutes=10),
    growth_window=timedelta(hours=1),
    growth_min_bytes=GiB,
    growth_min_samples=4,
    low_free_bytes=10 * GiB,
)
ENROLLED = NOW - timedelta(days=30)


def series(*spools_gib: float, every_min: int = 10, free_gib: float = 500) -> list[Sample]:
    """Samples ending now, ``every_min`` apart, with these spool sizes (GiB)."""
    n = len(spools_gib)
    return [
        Sample(NOW - timedelta(minutes=every_min * (n - 1 - i)), int(s * GiB), int(free_gib * GiB))
        for i, s in enumerate(spools_gib)
    ]


def kinds(
    samples: list[Sample],
    *,
    last_seen: datetime | None = NOW,
    enrolled_at: datetime | None = ENROLLED,
    revoked: bool = False,
) -> list[str]:
    return [
        a.kind
        for a in station_alerts(
            samples, last_seen=last_seen, enrolled_at=enrolled_at, revoked=revoked, now=NOW, rules=RULES
        )
    ]


@pytest.mark.parametrize(
    ("spools", "expected"),
    [
        ((0, 0.5, 1.0, 1.5, 2.0, 2.5), ["spool_growing"]),  # only ever grows: uploads are stuck
        ((0, 0.5, 1.0, 1.0, 1.0, 1.2), ["spool_growing"]),  # a plateau is not a drain
        ((0, 2.0, 4.0, 0.5, 1.0, 1.5), []),  # it drained once: uploads move
        ((5.0, 5.1, 5.2, 5.3, 5.4, 5.5), []),  # grows, but by less than 1 GiB
        ((0, 3.0, 6.0), []),  # too few samples to judge
        ((3.0, 2.0, 1.0, 0.0), []),  # draining
    ],
)
def test_spool_growing(spools: tuple[float, ...], expected: list[str]) -> None:
    assert kinds(series(*spools)) == expected


def test_samples_older_than_the_window_do_not_count() -> None:
    old = [Sample(NOW - timedelta(hours=3, minutes=i), i * GiB, 500 * GiB) for i in range(10)]
    assert kinds(old + series(9.0, 9.0)) == []


@pytest.mark.parametrize(
    ("last_seen", "enrolled_at", "silent"),
    [
        (NOW - timedelta(minutes=9), ENROLLED, False),
        (NOW - timedelta(minutes=11), ENROLLED, True),
        (None, NOW - timedelta(minutes=5), False),  # just enrolled, first heartbeat still to come
        (None, NOW - timedelta(hours=2), True),  # enrolled and never heard of since
    ],
)
def test_silent(last_seen: datetime | None, enrolled_at: datetime, silent: bool) -> None:
    assert ("silent" in kinds([], last_seen=last_seen, enrolled_at=enrolled_at)) is silent


def test_low_disk_uses_the_latest_sample() -> None:
    assert kinds(series(1, 1, free_gib=5)) == ["low_disk"]
    assert kinds([*series(1, free_gib=5), Sample(NOW + timedelta(seconds=1), GiB, 50 * GiB)]) == []


def test_revoked_and_unenrolled_stations_raise_nothing() -> None:
    stuck = series(0, 1, 2, 3, 4, free_gib=1)
    assert kinds(stuck, last_seen=None, revoked=True) == []
    assert kinds(stuck, last_seen=None, enrolled_at=None) == []
    assert kinds(stuck, last_seen=NOW - timedelta(hours=1)) == ["silent", "spool_growing", "low_disk"]


def test_growth_is_the_trend_over_the_window() -> None:
    assert growth(series(1, 2, 4), NOW, timedelta(hours=1)) == 3 * GiB
    assert growth(series(4, 1), NOW, timedelta(hours=1)) == -3 * GiB
    assert growth(series(4), NOW, timedelta(hours=1)) is None
