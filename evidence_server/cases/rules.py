"""The cases' rules as pure functions over plain data: which checkout a recording was made in, which
transfers still lack their task, and an officer's day around a recording. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class CheckoutWindow:
    """A device out with an officer for a task, from checkout to return (``end`` None: still out)."""

    entry_id: int
    device_serial: str
    officer_no: str | None
    start: datetime
    end: datetime | None
    case_number: str | None = None
    case_name: str | None = None
    enforcement_matter: str | None = None


@dataclass(frozen=True)
class RecordingSpan:
    """A recording's times as the device's clock wrote them, and that clock's offset at the dock.

    ``clock_offset_s`` is device clock minus server time (positive: the device runs fast), so the
    true time of a device timestamp is that timestamp minus the offset.
    """

    recording_id: int
    device_serial: str
    officer_no: str | None
    start: datetime | None
    end: datetime | None = None
    clock_offset_s: float | None = None

    def true_start(self) -> datetime | None:
        return None if self.start is None else self.start - timedelta(seconds=self.clock_offset_s or 0.0)

    def true_end(self) -> datetime | None:
        if self.end is None:
            return self.true_start()
        return self.end - timedelta(seconds=self.clock_offset_s or 0.0)


@dataclass(frozen=True)
class Match:
    recording_id: int
    entry_id: int
    case_number: str
    case_name: str | None
    enforcement_matter: str | None
    reason: str


def _same_officer(checkout: CheckoutWindow, rec: RecordingSpan) -> bool:
    return not (checkout.officer_no and rec.officer_no) or checkout.officer_no == rec.officer_no


def _distance(checkout: CheckoutWindow, at: datetime) -> timedelta:
    """How far ``at`` lies outside the checkout window (zero inside it)."""
    if at < checkout.start:
        return checkout.start - at
    if checkout.end is not None and at > checkout.end:
        return at - checkout.end
    return timedelta(0)


def match_checkouts(
    checkouts: Sequence[CheckoutWindow], recordings: Iterable[RecordingSpan], *, tolerance: timedelta
) -> list[Match]:
    """Each recording made during a checkout whose task names a case, with that checkout.

    A recording belongs to a checkout when the device is the same, the officer is the same (where
    both are known), and its start, corrected by the device's clock offset, lies within the window
    widened by ``tolerance`` on both sides. If windows overlap, the nearest checkout wins.
    """
    out: list[Match] = []
    for rec in recordings:
        at = rec.true_start()
        if at is None:
            continue
        candidates = [
            c
            for c in checkouts
            if c.case_number
            and c.device_serial == rec.device_serial
            and _same_officer(c, rec)
            and _distance(c, at) <= tolerance
        ]
        if not candidates:
            continue
        best = min(candidates, key=lambda c: (_distance(c, at), -c.start.timestamp()))
        offset = rec.clock_offset_s
        reason = (
            f"recorded on {rec.device_serial} at {at.isoformat()} (device clock corrected by "
            f"{-(offset or 0.0):+.1f} s{'' if offset is not None else ', offset unknown'}) "
            f"during checkout #{best.entry_id}"
        )
        assert best.case_number is not None
        out.append(
            Match(rec.recording_id, best.entry_id, best.case_number, best.case_name, best.enforcement_matter, reason)
        )
    return out


# --- transfers that still lack their task (R5) ----------------------------------------------------


@dataclass(frozen=True)
class TransferTask:
    transfer_id: str
    docked_at: datetime
    enforcement_matter: str | None
    case_id: int | None


def missing_task(t: TransferTask) -> list[str]:
    """What the transfer record still lacks: the rule requires both the matter and the case."""
    missing = []
    if not (t.enforcement_matter or "").strip():
        missing.append("enforcement_matter")
    if t.case_id is None:
        missing.append("case")
    return missing


def incomplete_transfers(
    transfers: Iterable[TransferTask], *, now: datetime, grace: timedelta
) -> list[tuple[TransferTask, list[str]]]:
    """Transfers docked more than ``grace`` ago still missing a matter or a case, oldest first."""
    found = [(t, missing_task(t)) for t in transfers if t.docked_at + grace <= now]
    return sorted([(t, m) for t, m in found if m], key=lambda pair: pair[0].docked_at)


# --- an officer's day -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dock:
    transfer_id: str
    device_serial: str
    docked_at: datetime
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Upload:
    recording_id: int
    transfer_id: str
    uploaded_at: datetime


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # checkout | return | recording | gap | dock | upload
    start: datetime
    end: datetime | None = None
    ref: Any = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


_ORDER = {"checkout": 0, "recording": 1, "gap": 2, "return": 3, "dock": 4, "upload": 5}


def officer_day(
    checkouts: Iterable[CheckoutWindow],
    recordings: Iterable[RecordingSpan],
    docks: Iterable[Dock],
    uploads: Iterable[Upload],
    *,
    min_gap: timedelta,
) -> list[TimelineItem]:
    """The officer's day in time order: checkouts and returns, recordings (true times) with the gaps
    of at least ``min_gap`` between consecutive ones, docks, and the uploads of each dock."""
    items: list[TimelineItem] = []
    for c in checkouts:
        items.append(
            TimelineItem(
                "checkout",
                c.start,
                c.end,
                c.entry_id,
                {
                    "device_serial": c.device_serial,
                    "case_number": c.case_number,
                    "enforcement_matter": c.enforcement_matter,
                },
            )
        )
        if c.end is not None:
            items.append(TimelineItem("return", c.end, None, c.entry_id, {"device_serial": c.device_serial}))
    spans = sorted(
        ((r, r.true_start(), r.true_end()) for r in recordings if r.start is not None),
        key=lambda x: (x[1], x[0].recording_id),
    )
    last_end: datetime | None = None
    for rec, start, end in spans:
        assert start is not None and end is not None
        if last_end is not None and start - last_end >= min_gap:
            items.append(TimelineItem("gap", last_end, start))
        items.append(
            TimelineItem(
                "recording",
                start,
                end,
                rec.recording_id,
                {"device_serial": rec.device_serial, "clock_offset_s": rec.clock_offset_s},
            )
        )
        last_end = end if last_end is None else max(last_end, end)
    for d in docks:
        items.append(
            TimelineItem("dock", d.docked_at, d.completed_at, d.transfer_id, {"device_serial": d.device_serial})
        )
    by_transfer: dict[str, list[Upload]] = {}
    for u in uploads:
        by_transfer.setdefault(u.transfer_id, []).append(u)
    for transfer_id, ups in by_transfer.items():
        first, last = min(u.uploaded_at for u in ups), max(u.uploaded_at for u in ups)
        items.append(TimelineItem("upload", first, last, transfer_id, {"files": len(ups)}))
    return sorted(items, key=lambda i: (i.start, _ORDER[i.kind]))
