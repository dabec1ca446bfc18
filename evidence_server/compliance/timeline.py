"""The drill-down's last step: the officer's (or device's) day around a flag, with the same pure
``cases.rules.officer_day`` the recording page uses."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.cases import rules
from evidence_server.cases.access import recordings_visible
from evidence_server.cases.linking import checkout_windows, span_of
from evidence_server.cases.search import Day
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import HAND_OUT
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer


def _within(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


def anchor(flag: ComplianceFlag) -> datetime:
    """When the activity behind the flag happened (a deadline may fall on the next day)."""
    ev = flag.evidence or {}
    for part, key in (("recording", "start"), ("checkout", "checked_out_at"), ("before", "start")):
        value = (ev.get(part) or {}).get(key) if isinstance(ev.get(part), dict) else None
        if value:
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
    return flag.at


def day_of_flag(session: Session, user: User, flag: ComplianceFlag, settings: Any) -> Day | None:
    """The local day of the flag's time: checkouts, recordings and gaps, docks and uploads of its officer
    (or, without one, of its device). None for flags about a user's downloads."""
    if flag.device_serial is None and flag.officer_no is None:
        return None
    tz = ZoneInfo(settings.default_timezone)
    start = datetime.combine(anchor(flag).astimezone(tz).date(), time(), tz)
    end, after = start + timedelta(days=1), start + timedelta(days=2)
    started = func.coalesce(Recording.name_started_at, Recording.container_started_at)
    who = [Recording.device_serial == flag.device_serial] if flag.device_serial else []
    if flag.officer_no:
        who.append(Recording.officer_no == flag.officer_no)
    recs = list(
        session.scalars(
            select(Recording).where(or_(*who), started >= start - timedelta(days=1), started < after).limit(2000)
        )
    )
    offsets = dict(
        session.execute(
            select(Transfer.id, Transfer.clock_offset_s).where(Transfer.id.in_({r.transfer_id for r in recs}))
        ).all()
    )
    spans = [s for s in (span_of(r, offsets.get(r.transfer_id)) for r in recs) if _within(s.true_start(), start, end)]
    ids = {s.recording_id for s in spans}
    serials = {r.device_serial for r in recs if r.id in ids} | ({flag.device_serial} if flag.device_serial else set())
    if flag.officer_no:
        serials |= set(
            session.scalars(
                select(Device.serial)
                .join(LedgerEntry, LedgerEntry.device_id == Device.id)
                .where(
                    LedgerEntry.officer_no == flag.officer_no,
                    LedgerEntry.kind.in_([k.value for k in HAND_OUT]),
                    LedgerEntry.occurred_at < end,
                    LedgerEntry.occurred_at >= start - timedelta(days=2),
                )
            )
        )
    windows = [
        w
        for w in checkout_windows(session, serials, start, end)
        if w.start < end and (not flag.officer_no or w.officer_no in (None, flag.officer_no))
    ]
    transfers = session.scalars(
        select(Transfer).where(
            Transfer.device_serial.in_(serials), Transfer.docked_at >= start, Transfer.docked_at < after
        )
    )
    docks = [rules.Dock(t.id, t.device_serial, t.docked_at, t.completed_at) for t in transfers]
    uploads = [rules.Upload(r.id, r.transfer_id, r.uploaded_at) for r in recs if r.id in ids]
    items = rules.officer_day(windows, spans, docks, uploads, min_gap=timedelta(seconds=settings.timeline_min_gap_s))
    visible = set(
        session.scalars(recordings_visible(user).where(Recording.id.in_(ids)).with_only_columns(Recording.id))
    )
    return Day(start, end, flag.officer_no, items, visible)
