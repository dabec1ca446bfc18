"""Linking recordings to cases without a case handler: from the checkout ledger, and at the dock.

The checkout ledger (``evidence_server.ledger``) says who took which device when, for which task;
``checkout_windows`` reads it (with corrections applied) into the plain ``CheckoutWindow``s that the
pure ``rules.match_checkouts`` works on. A recording's device times are corrected by the clock offset
measured at its dock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.cases import access, numbers, rules
from evidence_server.cases.models import Case, CaseLink
from evidence_server.cases.service import CaseError, CaseFields, create_case, find_by_number, link, unlink
from evidence_server.db import utcnow
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import HAND_OUT, Kind, Status, effective
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer, TransferFile

log = logging.getLogger(__name__)
WINDOW_FIELDS = ("occurred_at", "case_number", "case_name", "enforcement_matter")


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _returns_of(session: Session, ids: list[int]) -> dict[int | None, LedgerEntry]:
    """The returns of these hand-outs, by the hand-out they return."""
    stmt = select(LedgerEntry).where(LedgerEntry.kind == Kind.return_.value, LedgerEntry.refers_to_id.in_(ids))
    return {r.refers_to_id: r for r in session.scalars(stmt)}


def _corrections_of(session: Session, targets: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The corrections of these entries, in the order they were made, by the entry they correct."""
    corrections: dict[int, list[dict[str, Any]]] = {}
    for c in session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.kind == Kind.correction.value, LedgerEntry.refers_to_id.in_(targets))
        .order_by(LedgerEntry.occurred_at, LedgerEntry.id)
    ):
        if c.refers_to_id is not None:
            corrections.setdefault(c.refers_to_id, []).append(c.corrections or {})
    return corrections


def _window(
    entry: LedgerEntry, serial: str, back: LedgerEntry | None, corrections: dict[int, list[dict[str, Any]]]
) -> rules.CheckoutWindow:
    """A hand-out and its return as one window, corrections applied. Pure."""
    values = effective({k: getattr(entry, k) for k in WINDOW_FIELDS}, corrections.get(entry.id, []))
    end = (
        _when(effective({"occurred_at": back.occurred_at}, corrections.get(back.id, []))["occurred_at"])
        if back is not None
        else None
    )
    return rules.CheckoutWindow(
        entry.id,
        serial,
        entry.officer_no,
        _when(values["occurred_at"]),
        end,
        values.get("case_number"),
        values.get("case_name"),
        values.get("enforcement_matter"),
    )


def checkout_windows(
    session: Session, serials: set[str], since: datetime, until: datetime
) -> list[rules.CheckoutWindow]:
    """The checkouts and lends of these devices that overlap [since, until], corrections applied."""
    if not serials:
        return []
    rows = session.execute(
        select(LedgerEntry, Device.serial)
        .join(Device, Device.id == LedgerEntry.device_id)
        .where(
            Device.serial.in_(serials),
            LedgerEntry.kind.in_([k.value for k in HAND_OUT]),
            LedgerEntry.occurred_at <= until,
        )
    ).all()
    ids = [e.id for e, _ in rows]
    if not ids:
        return []
    returns = _returns_of(session, ids)
    corrections = _corrections_of(session, ids + [r.id for r in returns.values()])
    windows = [_window(entry, serial, returns.get(entry.id), corrections) for entry, serial in rows]
    return [w for w in windows if w.end is None or w.end >= since]


def span_of(rec: Recording, offset: float | None) -> rules.RecordingSpan:
    return rules.RecordingSpan(
        rec.id,
        rec.device_serial,
        rec.officer_no,
        rec.name_started_at or rec.container_started_at,
        rec.name_ended_at or rec.container_ended_at,
        offset,
    )


def _case_for(session: Session, match: rules.Match, rec: Recording, pattern: str) -> Case | None:
    try:
        number = numbers.check(match.case_number, pattern)
    except numbers.CaseNumberError as exc:
        audit(
            session,
            "case.autolink_skipped",
            object_type="recording",
            object_id=rec.id,
            details={"checkout_entry_id": match.entry_id, "case_number": match.case_number, "why": str(exc)},
        )
        return None
    case = session.scalar(select(Case).where(Case.number == number))
    if case is not None and not access.case_open_to_unit(session, case, rec.unit_id):
        # a checkout may name any number: another unit's case takes this unit's footage only if shared with it
        audit(
            session,
            "case.autolink_skipped",
            object_type="recording",
            object_id=rec.id,
            details={"checkout_entry_id": match.entry_id, "case_number": number, "why": "case of another unit"},
        )
        return None
    if case is None:  # the checkout named a case nobody opened yet: open it for the device's unit
        case = create_case(
            session,
            None,
            number=number,
            pattern=pattern,
            unit_id=rec.unit_id,
            created_via="checkout",
            fields=CaseFields(name=match.case_name or number, enforcement_matter=match.enforcement_matter),
        )
    return case


def _vouched(session: Session, recording_ids: list[int]) -> list[Recording]:
    """These recordings, but for those of a device still pending (until a device administrator confirms it)."""
    recs = list(session.scalars(select(Recording).where(Recording.id.in_(recording_ids))))
    pending = set(
        session.scalars(
            select(Device.serial).where(
                Device.serial.in_({r.device_serial for r in recs}), Device.status == Status.unregistered.value
            )
        )
    )
    return [r for r in recs if r.device_serial not in pending]


def _fill_task_from_checkout(session: Session, transfer: Transfer, case: Case, match: rules.Match) -> None:
    """Give a transfer with no task of its own the case and the matter of the checkout its footage matched."""
    if transfer.case_id is not None and transfer.enforcement_matter:
        return
    transfer.case_id = transfer.case_id or case.id
    transfer.enforcement_matter = transfer.enforcement_matter or match.enforcement_matter
    transfer.task_recorded_at = utcnow()
    audit(
        session,
        "transfer.task",
        object_type="transfer",
        object_id=transfer.id,
        details={
            "via": "checkout",
            "checkout_entry_id": match.entry_id,
            "case_id": transfer.case_id,
            "enforcement_matter": transfer.enforcement_matter,
        },
    )


def auto_link(session: Session, settings: Any, recording_ids: list[int]) -> list[CaseLink]:
    """Link each recording made during a checkout whose task names a case to that case. Idempotent.

    Recordings of a device still pending (first seen at a dock, not confirmed by a device administrator)
    are left unlinked: their footage is in custody, but no case takes it on a device nobody vouched for.
    """
    recs = _vouched(session, recording_ids)
    if not recs:
        return []
    transfers = {
        t.id: t for t in session.scalars(select(Transfer).where(Transfer.id.in_({r.transfer_id for r in recs})))
    }
    spans = {
        r.id: span_of(r, transfers[r.transfer_id].clock_offset_s if r.transfer_id in transfers else None) for r in recs
    }
    starts = [t for t in (s.true_start() for s in spans.values()) if t is not None]
    if not starts:
        return []
    slack = timedelta(seconds=settings.case_link_tolerance_s)
    windows = checkout_windows(session, {r.device_serial for r in recs}, min(starts) - slack, max(starts) + slack)
    made = []
    by_id = {r.id: r for r in recs}
    for match in rules.match_checkouts(windows, spans.values(), tolerance=slack):
        rec = by_id[match.recording_id]
        case = _case_for(session, match, rec, settings.case_number_pattern)
        if case is None:
            continue
        row, created = link(
            session, None, case, rec, origin="checkout", reason=match.reason, checkout_entry_id=match.entry_id
        )
        if created:
            made.append(row)
        transfer = transfers.get(rec.transfer_id)
        if transfer is not None:
            _fill_task_from_checkout(session, transfer, case, match)
    return made


# --- at the dock ------------------------------------------------------------------------------------


def transfers_visible(user: User) -> Any:
    q = select(Transfer)
    if user.sees_all_units:
        return q
    if Role(user.role) == Role.officer:
        return q.where(Transfer.unit_id == user.unit_id, Transfer.officer_no == (user.officer_no or "\x00"))
    return q.where(Transfer.unit_id == user.unit_id)


def get_transfer(session: Session, user: User, transfer_id: str) -> Transfer:
    transfer: Transfer | None = session.scalar(transfers_visible(user).where(Transfer.id == transfer_id))
    if transfer is None:
        raise CaseError("unknown_transfer", f"no transfer {transfer_id}, or not one you may see", 404)
    return transfer


def recordings_of_transfer(session: Session, transfer_id: str) -> list[Recording]:
    held = select(TransferFile.recording_id).where(TransferFile.transfer_id == transfer_id)
    return list(
        session.scalars(select(Recording).where(or_(Recording.transfer_id == transfer_id, Recording.id.in_(held))))
    )


def _task_case(session: Session, actor: User, case_number: str | None, pattern: str) -> Case | None:
    """The open case a dock task names, if it names one."""
    case = find_by_number(session, actor, case_number or "", pattern) if (case_number or "").strip() else None
    if case is not None and case.status == "closed":
        raise CaseError("case_closed", f"case {case.number} is closed", 409)
    return case


def _open_dock_link(session: Session, case_id: int, recording_id: int) -> CaseLink | None:
    """The live link a dock task made between a recording and a case, if there is one."""
    return session.scalar(
        select(CaseLink).where(
            CaseLink.case_id == case_id,
            CaseLink.recording_id == recording_id,
            CaseLink.origin == "dock",
            CaseLink.unlinked_at.is_(None),
        )
    )


def _move_dock_links(
    session: Session,
    transfer: Transfer,
    previous: int,
    case: Case,
    recordings: list[Recording],
    request: Request | None,
) -> None:
    """Unlink the recordings the dock linked to the transfer's previous case, saying where they went."""
    old = session.get(Case, previous)
    for rec in recordings:
        if _open_dock_link(session, previous, rec.id) is not None and old is not None:
            reason = f"transfer {transfer.id} moved to case {case.number}"
            unlink(session, None, old, rec.id, reason=reason, request=request)


def _link_task_case(
    session: Session, actor: User, transfer: Transfer, case: Case, recordings: list[Recording], request: Request | None
) -> None:
    """Point the transfer at the case and link its recordings there, moving them from a previous case."""
    previous = transfer.case_id
    transfer.case_id = case.id
    if previous is not None and previous != case.id:
        _move_dock_links(session, transfer, previous, case, recordings, request)
    for rec in recordings:
        link(
            session,
            actor,
            case,
            rec,
            origin="dock",
            reason=f"named at the dock for transfer {transfer.id}",
            request=request,
            at_dock=True,
        )


def set_transfer_task(
    session: Session,
    actor: User,
    transfer: Transfer,
    *,
    enforcement_matter: str | None,
    case_number: str | None,
    pattern: str,
    request: Request | None = None,
) -> Transfer:
    """The officer at the dock names the enforcement matter and the case; the transfer's recordings
    are linked to the case. Naming another case later moves the dock links with a reason."""
    if Role(actor.role) not in access.TASK_SETTERS:
        raise CaseError("not_allowed", "your role does not record transfer tasks", 403)
    matter = (enforcement_matter or "").strip()[:500] or None
    case = _task_case(session, actor, case_number, pattern)
    if matter is None and case is None:
        raise CaseError("empty_task", "enter the enforcement matter, the case, or both")
    previous = transfer.case_id
    if matter is not None:
        transfer.enforcement_matter = matter
    recordings, foreign = task_recordings(actor, transfer, recordings_of_transfer(session, transfer.id))
    if case is not None:
        _link_task_case(session, actor, transfer, case, recordings, request)
    transfer.task_recorded_at, transfer.task_recorded_by_id = utcnow(), actor.id
    audit(
        session,
        "transfer.task",
        request=request,
        object_type="transfer",
        object_id=transfer.id,
        details={
            "via": "dock",
            "enforcement_matter": transfer.enforcement_matter,
            "case_id": transfer.case_id,
            "previous_case_id": previous,
            "recordings": len(recordings),
            **({"left_out_other_unit": [r.id for r in foreign]} if foreign else {}),
        },
    )
    return transfer


def task_recordings(
    actor: User, transfer: Transfer, recordings: list[Recording]
) -> tuple[list[Recording], list[Recording]]:
    """The transfer's recordings its task may link or move, and those it must leave alone.

    A transfer may name a recording of another unit (bytes that another device brought first): the
    dock's task never moves such a recording, whoever sets it; only a manual link by someone who may
    link across units does. Pure.
    """
    mine = [r for r in recordings if r.unit_id == transfer.unit_id and access.may_link_recording(actor, r.unit_id)]
    return mine, [r for r in recordings if r not in mine]


def incomplete(
    session: Session, user: User, settings: Any, now: datetime | None = None
) -> list[tuple[Transfer, list[str]]]:
    """The transfers this user may see that still lack a matter or a case after the grace period."""
    now = now or utcnow()
    grace = timedelta(hours=settings.transfer_task_grace_hours)
    q = transfers_visible(user).where(
        Transfer.docked_at <= now - grace, or_(Transfer.case_id.is_(None), Transfer.enforcement_matter.is_(None))
    )
    rows = {t.id: t for t in session.scalars(q.order_by(Transfer.docked_at).limit(500))}
    tasks = [rules.TransferTask(t.id, t.docked_at, t.enforcement_matter, t.case_id) for t in rows.values()]
    return [(rows[t.transfer_id], missing) for t, missing in rules.incomplete_transfers(tasks, now=now, grace=grace)]
