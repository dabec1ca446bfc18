"""The segments of one continuous recording: a recorder splits a long recording into files of a few
minutes each; a reviewer moves from one to the next as if it were one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.cases.access import recordings_visible
from evidence_server.recordings.models import Recording

#: a next file that starts within this many seconds of the last one's end continues it
GAP_S = 5.0
#: how far around a recording to look for its neighbours
WINDOW = timedelta(hours=12)

Span = tuple[datetime | None, datetime | None]


def span(rec: Recording) -> Span:
    """When a file's footage starts and ends, from its name, else its container, else its duration."""
    start = rec.name_started_at or rec.container_started_at
    end = rec.name_ended_at or rec.container_ended_at
    if end is None and start is not None and rec.duration_s:
        end = start + timedelta(seconds=rec.duration_s)
    return start, end


def chain(spans: list[Span], at: int, gap_s: float = GAP_S) -> tuple[int, int]:
    """The first and last index of the run of spans (sorted by start) that continue one another
    without a gap of more than ``gap_s`` seconds, around ``at``. Pure."""

    def joins(a: Span, b: Span) -> bool:
        if a[1] is None or b[0] is None:
            return False
        return -gap_s <= (b[0] - a[1]).total_seconds() <= gap_s

    lo = hi = at
    while lo > 0 and joins(spans[lo - 1], spans[lo]):
        lo -= 1
    while hi < len(spans) - 1 and joins(spans[hi], spans[hi + 1]):
        hi += 1
    return lo, hi


@dataclass(frozen=True)
class Segments:
    items: list[Recording]  # the continuous recording's files that the user may see, in order
    index: int  # where this file is among them

    @property
    def previous(self) -> Recording | None:
        return self.items[self.index - 1] if self.index > 0 else None

    @property
    def next(self) -> Recording | None:
        return self.items[self.index + 1] if self.index < len(self.items) - 1 else None


def segments_of(session: Session, user: User, rec: Recording) -> Segments:
    """The files of the same device that continue one another around ``rec``, among those ``user`` sees."""
    start, _ = span(rec)
    if start is None:
        return Segments([rec], 0)
    began = func.coalesce(Recording.name_started_at, Recording.container_started_at)
    rows = list(
        session.scalars(
            recordings_visible(user)
            .where(
                Recording.device_serial == rec.device_serial,
                began >= start - WINDOW,
                began <= start + WINDOW,
            )
            .order_by(began, Recording.id)
            .limit(500)
        )
    )
    ids = [r.id for r in rows]
    if rec.id not in ids:
        return Segments([rec], 0)
    lo, hi = chain([span(r) for r in rows], ids.index(rec.id))
    return Segments(rows[lo : hi + 1], ids.index(rec.id) - lo)
