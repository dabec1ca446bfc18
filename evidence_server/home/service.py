"""The work waiting for each person, counted: what their home page shows first.

Each role's list answers "what should I do now?": officers the docks still missing their task and
the devices they must bring back; device administrators overdue devices, failed docks, silent
stations and devices waiting to be confirmed; legal affairs the flags to review; case handlers their
recent cases and the recordings nobody put in a case; auditors the latest checkpoint and the last
verification. Read-only; every figure scoped as the lists it links to are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.audit.log import latest_checkpoint
from evidence_server.audit.models import AuditCheckpoint, AuditEvent
from evidence_server.cases.access import cases_visible, recordings_visible
from evidence_server.cases.models import Case, CaseLink
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.config import Settings
from evidence_server.db import count_upto, utcnow
from evidence_server.docks.service import failed_ports, transfers_awaiting_task
from evidence_server.fleet.rules import FleetRules
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station

#: The flag states that still wait for legal affairs.
REVIEW_STATES = ("open", "under_review")
#: Actions whose latest entry tells an auditor how the last check of the evidence went.
VERIFICATION_ACTIONS = ("audit.verified", "fixity.sweep")


@dataclass(frozen=True)
class Count:
    """One figure on a home page: a message key, the number, where the list is, and whether it is bad news."""

    key: str
    n: int
    href: str
    alarm: bool = False
    more: bool = False  # there are more than ``n`` (the count stopped there)


@dataclass
class Work:
    counts: list[Count] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    checkpoint: AuditCheckpoint | None = None
    verification: AuditEvent | None = None


@dataclass(frozen=True)
class Checkout:
    entry: LedgerEntry
    serial: str
    overdue: bool


def my_checkouts(session: Session, user: User, now: datetime | None = None) -> list[Checkout]:
    """The devices out in this officer's name, soonest due first."""
    now = now or utcnow()
    rows = session.execute(
        select(LedgerEntry, Device.serial)
        .join(Device, Device.open_checkout_id == LedgerEntry.id)
        .where(LedgerEntry.officer_id == user.id)
        .order_by(LedgerEntry.expected_return_at.is_(None), LedgerEntry.expected_return_at)
    ).all()
    return [Checkout(e, serial, e.expected_return_at is not None and e.expected_return_at < now) for e, serial in rows]


def _unit_scope(user: User, column: Any) -> Any:
    return True if user.sees_all_units else column == user.unit_id


def overdue_devices(session: Session, user: User, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Device)
            .join(LedgerEntry, LedgerEntry.id == Device.open_checkout_id)
            .where(LedgerEntry.expected_return_at < now, _unit_scope(user, Device.unit_id))
        )
        or 0
    )


def silent_stations(session: Session, user: User, now: datetime, silent_after: timedelta) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Station)
            .where(
                Station.enrolled_at.is_not(None),
                Station.revoked_at.is_(None),
                or_(Station.last_seen_at.is_(None), Station.last_seen_at < now - silent_after),
                _unit_scope(user, Station.unit_id),
            )
        )
        or 0
    )


def unconfirmed_devices(session: Session, user: User) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Device)
            .where(Device.status == "unregistered", _unit_scope(user, Device.unit_id))
        )
        or 0
    )


def flags_to_review(session: Session, user: User, *, mine: bool = False) -> int:
    q = (
        select(func.count())
        .select_from(ComplianceFlag)
        .where(ComplianceFlag.state.in_(REVIEW_STATES), ComplianceFlag.cleared_at.is_(None))
    )
    if mine:
        q = q.where(ComplianceFlag.assignee_id == user.id)
    if not user.sees_all_units:
        q = q.where(ComplianceFlag.unit_id == user.unit_id)
    return int(session.scalar(q) or 0)


#: The home page counts recordings without a case up to this many, then says "1000+".
WITHOUT_CASE_CAP = 1000


def recordings_without_case(session: Session, user: User, older_than: timedelta) -> tuple[int, bool]:
    """How many visible recordings, verified longer ago than ``older_than``, are in no case: (n, more).

    NOT EXISTS, looked up by index for each recording, and counted no further than ``WITHOUT_CASE_CAP``:
    ``id NOT IN (every link)`` could not hash 7M links and ran for over 12 minutes at 10M recordings."""
    linked = select(CaseLink.id).where(CaseLink.recording_id == Recording.id, CaseLink.unlinked_at.is_(None)).exists()
    q = recordings_visible(user).where(Recording.verified_at < utcnow() - older_than, ~linked)
    return count_upto(session, q, WITHOUT_CASE_CAP)


def last_verification(session: Session) -> AuditEvent | None:
    return session.scalar(
        select(AuditEvent).where(AuditEvent.action.in_(VERIFICATION_ACTIONS)).order_by(AuditEvent.seq.desc()).limit(1)
    )


def work_for(session: Session, user: User, settings: Settings, now: datetime | None = None) -> Work:
    """The counts and short lists of a person's home page."""
    now = now or utcnow()
    role, work = Role(user.role), Work()
    if role == Role.officer:
        work.checkouts = my_checkouts(session, user, now)
        work.counts = [
            Count("home.docks_to_register", len(transfers_awaiting_task(session, user)), "/me#tasks"),
            Count("home.devices_due", len(work.checkouts), "/me#checkouts"),
            Count("home.devices_overdue", sum(c.overdue for c in work.checkouts), "/me#checkouts", alarm=True),
        ]
    elif role in (Role.device_admin, Role.sysadmin):
        silent_after = FleetRules.from_settings(settings).silent_after
        work.counts = [
            Count("home.overdue_devices", overdue_devices(session, user, now), "/devices?status=checked_out", True),
            Count("home.failed_docks", len(failed_ports(session, user=user)), "/fleet#fleet-failed-docks", True),
            Count("home.stations_offline", silent_stations(session, user, now, silent_after), "/fleet", True),
            Count("home.devices_unconfirmed", unconfirmed_devices(session, user), "/devices?status=unregistered"),
        ]
    elif role == Role.legal_affairs:
        work.counts = [
            Count("home.flags_to_review", flags_to_review(session, user), "/compliance?state=open"),
            Count("home.flags_mine", flags_to_review(session, user, mine=True), "/compliance?assignee=me"),
        ]
    elif role == Role.case_handler:
        days = settings.home_unlinked_days
        unlinked, more = recordings_without_case(session, user, timedelta(days=days))
        work.cases = list(session.scalars(cases_visible(user).order_by(Case.created_at.desc()).limit(8)))
        work.counts = [
            Count("home.recent_cases", len(work.cases), "/cases"),
            Count("home.without_case", unlinked, "/recordings", alarm=True, more=more),
        ]
    elif role == Role.auditor:
        work.checkpoint = latest_checkpoint(session)
        work.verification = last_verification(session)
        work.counts = [Count("home.flags_to_review", flags_to_review(session, user), "/compliance")]
    return work
