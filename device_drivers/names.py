"""Recording file names: what a family writes into them, parsed into serial, officer, start time, sequence.

GA/T 947.4 likely fixes a naming rule but its text is unverified, so every family carries its own list
of :class:`NamePattern`; the device's info block (or volume label) stays the trusted identity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

DEVICE_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class ParsedName:
    """What a file name says about its recording; any field None when the name does not carry it."""

    started_at: datetime | None = None
    sequence: int | None = None
    serial: str | None = None
    officer_no: str | None = None


@dataclass(frozen=True)
class NamePattern:
    """A file-name rule: ``regex`` with named groups ``serial``, ``officer_no``, ``date``, ``time``, ``seq``.

    The groups ``date`` and ``time`` (either may be absent) are concatenated and parsed with
    ``datetime_format`` as wall-clock time of the device clock in ``tz``, then converted to UTC.
    The regex is matched against the last path component only.
    """

    regex: re.Pattern[str]
    datetime_format: str = "%Y%m%d%H%M%S"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEVICE_TZ))
    name: str = ""

    @classmethod
    def compile(
        cls, regex: str, datetime_format: str = "%Y%m%d%H%M%S", tz: str = DEVICE_TZ, name: str = ""
    ) -> NamePattern:
        return cls(re.compile(regex), datetime_format, ZoneInfo(tz), name or regex)

    def parse(self, file_name: str) -> ParsedName | None:
        """Parse ``file_name``; None when the name does not match (or holds an impossible date)."""
        m = self.regex.fullmatch(file_name)
        if m is None:
            return None
        groups = m.groupdict()
        stamp = (groups.get("date") or "") + (groups.get("time") or "")
        started_at = None
        if stamp:
            try:
                local = datetime.strptime(stamp, self.datetime_format)
            except ValueError:
                return None
            started_at = local.replace(tzinfo=self.tz).astimezone(UTC)
        seq = groups.get("seq")
        return ParsedName(
            started_at=started_at,
            sequence=int(seq) if seq else None,
            serial=groups.get("serial") or None,
            officer_no=groups.get("officer_no") or None,
        )


#: ``DSJ0001_102345_20261120093000_0001.MP4``: serial, officer 警号, local start time, sequence.
GA_T_947_PATTERN = NamePattern.compile(
    r"(?P<serial>[A-Za-z0-9]{1,32})_(?P<officer_no>[A-Za-z0-9]{1,32})_(?P<date>\d{8})(?P<time>\d{6})"
    r"_(?P<seq>\d{4,9})\.[A-Za-z0-9]{1,5}",
    name="ga_t_947",
)
#: ``20261120_093000_0001.MP4``: the common vendor layout without serial or officer.
VENDOR_TIME_PATTERN = NamePattern.compile(
    r"(?P<date>\d{8})_(?P<time>\d{6})_(?P<seq>\d{1,9})\.[A-Za-z0-9]{1,5}", name="vendor_time"
)
DEFAULT_NAME_PATTERNS: tuple[NamePattern, ...] = (GA_T_947_PATTERN, VENDOR_TIME_PATTERN)


def parse_name(file_name: str, patterns: Sequence[NamePattern] = DEFAULT_NAME_PATTERNS) -> ParsedName:
    """Parse a file name with the first pattern that matches; an empty :class:`ParsedName` if none does."""
    base = file_name.rsplit("/", 1)[-1]
    for pattern in patterns:
        parsed = pattern.parse(base)
        if parsed is not None:
            return parsed
    return ParsedName()


def format_name(
    serial: str, officer_no: str, started_at: datetime, seq: int, ext: str = "MP4", tz: str = DEVICE_TZ
) -> tuple[str, str]:
    """Default-pattern ``(day folder, file name)`` of a segment: ``("20261120", "DSJ0001_..MP4")``."""
    local = started_at.astimezone(ZoneInfo(tz))
    return local.strftime("%Y%m%d"), f"{serial}_{officer_no}_{local:%Y%m%d%H%M%S}_{seq:04d}.{ext}"


def to_device_utc(value: datetime, tz: str = DEVICE_TZ) -> datetime:
    """A naive datetime is wall-clock time of the device; an aware one is converted. Returns UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(UTC)


def utc_from_ns(ns: int) -> datetime:
    """A POSIX timestamp in nanoseconds as an aware UTC datetime (microsecond precision)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
