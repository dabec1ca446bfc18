"""File names: what they say about serial, officer, start time (device local time -> UTC) and sequence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from device_drivers.names import NamePattern, ParsedName, format_name, parse_name, to_device_utc


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "DCIM/20261120/DSJ0001_102345_20261120093000_0001.MP4",
            ParsedName(datetime(2026, 11, 20, 1, 30, tzinfo=UTC), 1, "DSJ0001", "102345"),
        ),
        # Just before midnight in Beijing is still the afternoon of the same day in UTC...
        (
            "DSJ0001_102345_20261120235959_0007.mp4",
            ParsedName(datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC), 7, "DSJ0001", "102345"),
        ),
        # ...and just after midnight in Beijing is the previous day in UTC.
        (
            "DCIM/20261121/DSJ0001_102345_20261121000001_0008.MP4",
            ParsedName(datetime(2026, 11, 20, 16, 0, 1, tzinfo=UTC), 8, "DSJ0001", "102345"),
        ),
        ("20261120_093000_0012.MP4", ParsedName(datetime(2026, 11, 20, 1, 30, tzinfo=UTC), 12)),
        ("IMG_0001.JPG", ParsedName()),
        ("DSJ0001_102345_20261332093000_0001.MP4", ParsedName()),  # month 13: not a start time
        ("DSJ0001_102345_20261120093000_0001.MP4.part", ParsedName()),
    ],
)
def test_default_patterns(name: str, expected: ParsedName) -> None:
    assert parse_name(name) == expected


def test_family_pattern_with_its_own_format_and_clock() -> None:
    # A family whose clock runs on UTC and that writes dashes: the pattern says so, not the code.
    pattern = NamePattern.compile(
        r"REC-(?P<date>\d{4}-\d{2}-\d{2})_(?P<time>\d{2}\.\d{2}\.\d{2})-(?P<officer_no>\d+)\.mov",
        datetime_format="%Y-%m-%d%H.%M.%S",
        tz="UTC",
    )
    parsed = parse_name("REC-2026-11-20_23.10.05-102345.mov", [pattern])
    assert parsed == ParsedName(datetime(2026, 11, 20, 23, 10, 5, tzinfo=UTC), None, None, "102345")


def test_format_name_round_trips_and_uses_the_local_day_folder() -> None:
    started = datetime(2026, 11, 20, 16, 0, 1, tzinfo=UTC)  # 00:00:01 on the 21st in Beijing
    day, name = format_name("DSJ0001", "102345", started, 8)
    assert (day, name) == ("20261121", "DSJ0001_102345_20261121000001_0008.MP4")
    assert parse_name(f"DCIM/{day}/{name}").started_at == started


def test_naive_times_are_device_local() -> None:
    assert to_device_utc(datetime(2026, 11, 20, 9, 30)) == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    aware = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert to_device_utc(aware) == aware
