"""Retention decisions as pure functions over plain data: how long a recording is kept, and whether it is due.

Footage not linked to a case is kept ``unlinked_months`` after it was recorded (at least six months).
Footage linked to a case is kept while the case is open and ``closed_case_years`` after it closes;
footage of a case of a permanent kind (major cases, obstruction of officers, mass incidents) is kept
for good. A person may extend one recording's retention beyond the policy. Whatever is longest wins.

A recording marked important (重要文件标记) and not yet reviewed has no end date (basis ``important``):
it cannot be disposed of before a person reviewed the mark.

Legal holds are pure data here too: which holds cover a recording. A held recording is never
disposed of.

No I/O here: the server turns its rows into ``RecordingFacts`` and ``CaseFacts`` and stores the
``Decision``; ``evidence_server.retention.apply`` applies it.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]

DEFAULT_PERMANENT_KINDS = ("major", "mass_incident", "obstruction")


class RetentionPolicy(BaseModel):
    """The bureau's retention policy: validated configuration with bounds; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: footage linked to no case: kept this many months after it was recorded (the rule's floor is six)
    unlinked_months: int = Field(default=6, ge=6, le=1200)
    #: footage linked to a case: kept this many years after the case closes
    closed_case_years: int = Field(default=3, ge=1, le=100)
    #: case kinds whose footage is kept for good
    permanent_kinds: tuple[Kind, ...] = DEFAULT_PERMANENT_KINDS
    #: WORM storage: footage without an end date is locked this far ahead, renewed before it runs out
    lock_horizon_days: int = Field(default=365, ge=30, le=3650)

    @field_validator("permanent_kinds")
    @classmethod
    def _sorted_unique(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(kinds)))


def load_policy(data: dict[str, Any] | None) -> RetentionPolicy:
    """A policy from configuration (``{}``: the defaults); ``ValueError`` naming every bad or unknown key."""
    try:
        return RetentionPolicy.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid retention policy: {problems}") from exc


def shortened_by(old: RetentionPolicy, new: RetentionPolicy) -> list[str]:
    """The settings in which ``new`` keeps footage for less time than ``old`` (empty: no shortening)."""
    out = []
    if new.unlinked_months < old.unlinked_months:
        out.append("unlinked_months")
    if new.closed_case_years < old.closed_case_years:
        out.append("closed_case_years")
    if set(old.permanent_kinds) - set(new.permanent_kinds):
        out.append("permanent_kinds")
    return out


class Basis(enum.StrEnum):
    """Why a recording is kept as long as it is."""

    unlinked = "unlinked"  # no case: recorded + unlinked_months
    case_open = "case_open"  # linked to a case still open (or reopened): no end yet
    case_closed = "case_closed"  # linked to closed cases: the last closing + closed_case_years
    permanent_kind = "permanent_kind"  # linked to a case of a permanent kind
    extended = "extended"  # a person extended it beyond the policy
    important = "important"  # marked important (重要文件标记) and not yet reviewed: no end until reviewed


#: Bases without an end date that wait for something to happen (a case to close, a mark to be reviewed):
#: moving between them, or from one of them to the date it then gets, shortens nothing a person set.
PENDING_BASES = frozenset({Basis.case_open, Basis.important})


@dataclass(frozen=True)
class CaseFacts:
    case_id: int
    #: when the case closed; None while it is open (a reopened case is open again)
    closed_at: datetime | None
    kinds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RecordingFacts:
    recording_id: int
    recorded_at: datetime
    cases: tuple[CaseFacts, ...] = ()
    #: a person's extension of this recording: until then, or for good
    extended_until: datetime | None = None
    extended_for_good: bool = False
    #: marked important by the recorder or a person, and the mark not yet reviewed
    important_unreviewed: bool = False


@dataclass(frozen=True)
class Decision:
    #: None: no end date (kept for good, or until an open case closes)
    until: datetime | None
    basis: Basis
    case_id: int | None = None

    @property
    def open_ended(self) -> bool:
        return self.until is None


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall time ``months`` later; the 31st becomes the last day of a shorter month."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def add_years(moment: datetime, years: int) -> datetime:
    return add_months(moment, 12 * years)


def _later(a: Decision, b: Decision) -> Decision:
    """The decision that keeps longer (no end beats any date; on a tie the first)."""
    if a.until is None:
        return a
    if b.until is None:
        return b
    return b if b.until > a.until else a


def decide(recording: RecordingFacts, policy: RetentionPolicy) -> Decision:
    """How long ``recording`` is kept under ``policy``, and why."""
    if recording.recorded_at.tzinfo is None:
        raise ValueError("naive datetime: retention works on UTC-aware times only")
    permanent = set(policy.permanent_kinds)
    best = Decision(add_months(recording.recorded_at, policy.unlinked_months), Basis.unlinked)
    for case in sorted(recording.cases, key=lambda c: c.case_id):
        if case.kinds & permanent:
            return Decision(None, Basis.permanent_kind, case.case_id)
        if case.closed_at is None:
            best = _later(best, Decision(None, Basis.case_open, case.case_id))
        else:
            best = _later(
                best, Decision(add_years(case.closed_at, policy.closed_case_years), Basis.case_closed, case.case_id)
            )
    if recording.extended_for_good:
        return Decision(None, Basis.extended)
    if recording.extended_until is not None:
        best = _later(best, Decision(recording.extended_until, Basis.extended))
    if recording.important_unreviewed and best.until is not None:
        return Decision(None, Basis.important)  # kept until someone reviewed the mark
    return best


def retain_until(recording: RecordingFacts, policy: RetentionPolicy) -> datetime | None:
    """The end of ``recording``'s retention; None: kept for good (or until its open case closes)."""
    return decide(recording, policy).until


def is_due(until: datetime | None, now: datetime, *, held: bool = False, disposed: bool = False) -> bool:
    """May the footage be disposed of now? Only once its end date is reached, never under a hold."""
    return until is not None and not held and not disposed and now >= until


class Change(enum.StrEnum):
    same = "same"
    extend = "extend"
    fix = "fix"  # an open case closed: its end date is set for the first time
    shorten = "shorten"


def change(old: Decision | None, new: Decision) -> Change:
    """What moving from ``old`` to ``new`` does. Shortening needs two people's approval; the rest is automatic.

    Going from "until the case closes" to the closed case's date is the case closing, not a
    shortening: no date was ever set; so is going from "until the important mark is reviewed" to the
    policy's date once it was. Going from "for good" (a permanent kind, a person's extension)
    to anything less is a shortening, and so is unlinking footage from its open case.
    """
    if old is None:
        return Change.extend
    if old.until is None and new.until is None:
        if (old.basis in PENDING_BASES) != (new.basis in PENDING_BASES):
            return Change.extend if old.basis in PENDING_BASES else Change.shorten
        return Change.same
    if new.until is None:
        return Change.extend
    if old.until is None:
        if old.basis == Basis.case_open and new.basis == Basis.case_closed:
            return Change.fix
        # a reviewed (or cleared) important mark: the date the policy gives, set for the first time
        return Change.fix if old.basis == Basis.important else Change.shorten
    if new.until > old.until:
        return Change.extend
    return Change.same if new.until == old.until else Change.shorten


def lock_until(decision: Decision, now: datetime, policy: RetentionPolicy) -> datetime:
    """The retain-until date WORM storage should hold: the end date, or a rolling horizon when there is none."""
    if decision.until is not None:
        return decision.until
    return now + timedelta(days=policy.lock_horizon_days)


def lock_needs_renewal(current: datetime | None, wanted: datetime, now: datetime, policy: RetentionPolicy) -> bool:
    """Should the object's lock be moved to ``wanted``? Locks only ever move later; a rolling lock is
    renewed once less than half its horizon is left, not on every run."""
    if current is None:
        return True
    if wanted <= current:
        return False
    horizon = timedelta(days=policy.lock_horizon_days)
    rolling = wanted - now >= horizon - timedelta(days=1)
    return not rolling or current - now < horizon / 2


@dataclass(frozen=True)
class DueItem:
    recording_id: int
    until: datetime


@dataclass
class DueList:
    due: list[DueItem] = field(default_factory=list)
    held: list[int] = field(default_factory=list)


def due_list(candidates: Iterable[tuple[int, datetime | None]], held: set[int], now: datetime) -> DueList:
    """Split (recording, end date) pairs into those due now and those due but held."""
    out = DueList()
    for rid, until in candidates:
        if until is None or now < until:
            continue
        if rid in held:
            out.held.append(rid)
        else:
            out.due.append(DueItem(rid, until))
    return out


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: retention works on UTC-aware times only")
    return moment.astimezone(UTC)


# --- legal holds ---------------------------------------------------------------------------------


class Target(enum.StrEnum):
    """What a hold is placed on."""

    case = "case"  # every recording linked to the case
    recording = "recording"
    officer = "officer"  # every recording of the officer (by officer number)
    device = "device"  # every recording of the device (by serial number)


@dataclass(frozen=True)
class Hold:
    hold_id: int
    target: Target
    value: str  # the case or recording id, the officer number or the device serial, as text


@dataclass(frozen=True)
class Subject:
    """What a hold can match on a recording."""

    recording_id: int
    officer_no: str | None
    device_serial: str
    case_ids: frozenset[int] = frozenset()


def covers(hold: Hold, subject: Subject) -> bool:
    if hold.target == Target.recording:
        return hold.value == str(subject.recording_id)
    if hold.target == Target.case:
        return hold.value in {str(c) for c in subject.case_ids}
    if hold.target == Target.officer:
        return subject.officer_no is not None and hold.value == subject.officer_no
    return hold.value == subject.device_serial


def holds_on(subject: Subject, holds: Iterable[Hold]) -> list[int]:
    """The ids of the holds that cover ``subject``, in order."""
    return sorted(h.hold_id for h in holds if covers(h, subject))


def shortens_extension(
    current_until: datetime | None, current_for_good: bool, until: datetime | None, for_good: bool
) -> bool:
    """Would this extension keep a recording less long than the one a person set? Then it needs approval."""
    return (current_for_good and not for_good) or (
        current_until is not None and until is not None and until < current_until
    )


def extends_nothing(
    retain_until: datetime | None, current_until: datetime | None, until: datetime | None, for_good: bool
) -> bool:
    """Is this first extension no later than the policy keeps the recording anyway?"""
    return (
        not for_good
        and until is not None
        and retain_until is not None
        and until <= retain_until
        and current_until is None
    )
