"""The job that applies the retention decisions: each recording's state, its WORM lock and its legal hold.

``apply_retention(session, store, policy)`` walks the recordings in batches, decides each with the
pure ``evidence_server.retention.rules.decide``, and changes only what differs: running it twice changes nothing
the second time. Extensions are applied at once; a shortening is applied only when an approved
retention change covers it, otherwise it becomes a change request waiting for two approvals. Every
change is an audit event. It commits batch by batch, so stopping it (``should_stop``) between
batches loses nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire.documents import parse_iso, utc_iso
from evidence_server.audit.service import record as audit
from evidence_server.cases.models import Case, CaseLink
from evidence_server.db import utcnow
from evidence_server.recordings.important import kept_for_review
from evidence_server.recordings.models import Recording
from evidence_server.retention.models import (
    DISPOSED,
    CaseKind,
    LegalHold,
    RetentionChange,
    RetentionState,
)
from evidence_server.retention.rules import (
    Basis,
    CaseFacts,
    Change,
    Decision,
    Hold,
    RecordingFacts,
    RetentionPolicy,
    Subject,
    Target,
    change,
    decide,
    holds_on,
    lock_needs_renewal,
    lock_until,
)
from evidence_server.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class ApplyReport:
    seen: int = 0
    created: list[int] = field(default_factory=list)
    extended: list[int] = field(default_factory=list)
    fixed: list[int] = field(default_factory=list)
    shortened: list[int] = field(default_factory=list)
    proposed: list[int] = field(default_factory=list)  # shortenings waiting for two approvals
    locked: list[int] = field(default_factory=list)  # WORM retain-until moved later
    hold_on: list[int] = field(default_factory=list)
    hold_off: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def changed(self) -> bool:
        return any(
            (
                self.created,
                self.extended,
                self.fixed,
                self.shortened,
                self.proposed,
                self.locked,
                self.hold_on,
                self.hold_off,
            )
        )


def decision_dict(d: Decision) -> dict[str, Any]:
    return {"until": utc_iso(d.until) if d.until else None, "basis": d.basis.value, "case_id": d.case_id}


def decision_of(state: RetentionState) -> Decision:
    return Decision(state.retain_until, Basis(state.basis), state.case_id)


def case_closed_at(case: Case, tz: ZoneInfo) -> datetime | None:
    """When a case closed, as an instant: the end of its closing day in the site's zone (the day counts)."""
    if case.status != "closed":
        return None
    day: date = case.closed_on or case.updated_at.astimezone(tz).date()
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)


def active_holds(session: Session) -> list[Hold]:
    return [
        Hold(h.id, Target(h.target), h.value)
        for h in session.scalars(select(LegalHold).where(LegalHold.lifted_at.is_(None)))
    ]


def subject_of(rec: Recording, case_ids: Iterable[int]) -> Subject:
    return Subject(rec.id, rec.officer_no, rec.device_serial, frozenset(case_ids))


@dataclass
class Batch:
    """The rows a batch of recordings needs, loaded with a few queries."""

    recordings: list[Recording]
    states: dict[int, RetentionState]
    cases: dict[int, list[Case]]
    kinds: dict[int, str]

    @classmethod
    def load(cls, session: Session, ids: list[int]) -> Batch:
        recs = list(session.scalars(select(Recording).where(Recording.id.in_(ids)).order_by(Recording.id)))
        states = {
            s.recording_id: s
            for s in session.scalars(select(RetentionState).where(RetentionState.recording_id.in_(ids)))
        }
        cases: dict[int, list[Case]] = defaultdict(list)
        for rid, case in session.execute(
            select(CaseLink.recording_id, Case)
            .join(Case, Case.id == CaseLink.case_id)
            .where(CaseLink.recording_id.in_(ids), CaseLink.unlinked_at.is_(None))
        ):
            cases[rid].append(case)
        case_ids = {c.id for cs in cases.values() for c in cs}
        kinds = {k.case_id: k.kind for k in session.scalars(select(CaseKind).where(CaseKind.case_id.in_(case_ids)))}
        return cls(recs, states, cases, kinds)

    def facts(self, rec: Recording, tz: ZoneInfo) -> RecordingFacts:
        state = self.states.get(rec.id)
        cases = tuple(
            CaseFacts(c.id, case_closed_at(c, tz), frozenset({self.kinds[c.id]} if c.id in self.kinds else set()))
            for c in self.cases[rec.id]
        )
        # kept from when the footage reached the evidence store: never before it was recorded, and
        # not at the mercy of a device clock set years wrong
        return RecordingFacts(
            rec.id,
            rec.verified_at,
            cases,
            extended_until=state.extended_until if state else None,
            extended_for_good=bool(state and state.extended_for_good),
            important_unreviewed=kept_for_review(rec.important, rec.important_reviewed_at is not None),
        )


def covering_approval(
    changes: list[RetentionChange], state: RetentionState, new: Decision, case_ids: set[int]
) -> RetentionChange | None:
    """An applied change, decided after the state last changed, that allows this shortening."""
    for ch in changes:
        if ch.decided_at is None or ch.decided_at <= state.updated_at:
            continue
        if ch.subject == "policy":
            return ch
        if ch.subject == "case_kind" and (ch.case_id in case_ids or ch.case_id == state.case_id):
            return ch
        if ch.subject in ("extension", "recording") and ch.recording_id == state.recording_id:
            target = ch.proposed.get("until")
            if ch.subject == "extension" or target is None or (new.until and new.until >= parse_iso(target)):
                return ch
    return None


class Applier:
    def __init__(
        self,
        session: Session,
        store: ObjectStore,
        policy: RetentionPolicy,
        now: datetime,
        tz: ZoneInfo,
        report: ApplyReport,
    ) -> None:
        self.session, self.store, self.policy, self.now, self.tz, self.report = (
            session,
            store,
            policy,
            now,
            tz,
            report,
        )
        self.holds = active_holds(session)
        self.approved = list(session.scalars(select(RetentionChange).where(RetentionChange.status == "applied")))
        self.pending_or_rejected = {
            (c.recording_id, c.proposed.get("until"))
            for c in session.scalars(
                select(RetentionChange).where(
                    RetentionChange.subject == "recording", RetentionChange.status.in_(("pending", "rejected"))
                )
            )
        }
        self.pending_recordings = {rid for rid, _ in self.pending_or_rejected}

    def run(self, batch: Batch) -> None:
        for rec in batch.recordings:
            self.report.seen += 1
            state = batch.states.get(rec.id)
            new = decide(batch.facts(rec, self.tz), self.policy)
            case_ids = {c.id for c in batch.cases[rec.id]}
            if state is None:
                state = RetentionState(
                    recording_id=rec.id,
                    retain_until=new.until,
                    basis=new.basis.value,
                    case_id=new.case_id,
                    updated_at=self.now,
                    computed_at=self.now,
                )
                self.session.add(state)
                self.report.created.append(rec.id)
                audit(
                    self.session, "retention.set", object_type="recording", object_id=rec.id, details=decision_dict(new)
                )
            else:
                self._update(rec, state, new, case_ids)
            state.computed_at = self.now
            self._storage(rec, state, case_ids)

    def _update(self, rec: Recording, state: RetentionState, new: Decision, case_ids: set[int]) -> None:
        old = decision_of(state)
        kind = change(old, new)
        if kind == Change.same:
            if (old.basis, old.case_id) != (new.basis, new.case_id):
                state.basis, state.case_id = new.basis.value, new.case_id  # same end date, another reason
            return
        details: dict[str, Any] = {"from": decision_dict(old), "to": decision_dict(new)}
        if kind == Change.shorten:
            approval = covering_approval(self.approved, state, new, case_ids)
            if approval is None:
                self._propose(rec, old, new)
                return
            details["change_id"] = approval.id
            self.report.shortened.append(rec.id)
        else:
            (self.report.extended if kind == Change.extend else self.report.fixed).append(rec.id)
        state.retain_until, state.basis, state.case_id, state.updated_at = (
            new.until,
            new.basis.value,
            new.case_id,
            self.now,
        )
        action = {
            Change.extend: "retention.extended",
            Change.fix: "retention.fixed",
            Change.shorten: "retention.shortened",
        }[kind]
        audit(self.session, action, object_type="recording", object_id=rec.id, details=details)

    def _propose(self, rec: Recording, old: Decision, new: Decision) -> None:
        """A shortening nobody approved: ask two people, once."""
        target = decision_dict(new)
        if rec.id in self.pending_recordings or (rec.id, target["until"]) in self.pending_or_rejected:
            return
        ch = RetentionChange(
            subject="recording",
            recording_id=rec.id,
            current=decision_dict(old),
            proposed=target,
            reason="the recording's facts changed (unlinked from its case, or its case's dates "
            "were corrected): its retention would shorten",
            requested_at=self.now,
        )
        self.session.add(ch)
        self.session.flush()
        self.pending_recordings.add(rec.id)
        self.pending_or_rejected.add((rec.id, target["until"]))
        self.report.proposed.append(rec.id)
        audit(
            self.session,
            "retention.change_requested",
            object_type="retention_change",
            object_id=ch.id,
            details={"subject": "recording", "recording_id": rec.id, "from": ch.current, "to": target, "by": "system"},
        )

    def _storage(self, rec: Recording, state: RetentionState, case_ids: set[int]) -> None:
        """Bring the object's WORM lock and legal hold in line (stores without them answer False)."""
        held = bool(holds_on(subject_of(rec, case_ids), self.holds))
        state.held = held
        try:
            wanted = lock_until(decision_of(state), self.now, self.policy)
            if lock_needs_renewal(state.lock_until, wanted, self.now, self.policy) and self.store.set_retention(
                rec.storage_key, wanted
            ):
                previous, state.lock_until = state.lock_until, wanted
                self.report.locked.append(rec.id)
                audit(
                    self.session,
                    "retention.lock_extended",
                    object_type="recording",
                    object_id=rec.id,
                    details={
                        "storage_key": rec.storage_key,
                        "from": utc_iso(previous) if previous else None,
                        "to": utc_iso(wanted),
                    },
                )
            if held != state.storage_hold and self.store.set_legal_hold(rec.storage_key, held):
                state.storage_hold = held
                (self.report.hold_on if held else self.report.hold_off).append(rec.id)
                audit(
                    self.session,
                    "retention.storage_hold_on" if held else "retention.storage_hold_off",
                    object_type="recording",
                    object_id=rec.id,
                    details={"storage_key": rec.storage_key},
                )
        except Exception as exc:  # noqa: BLE001  (one object the store refuses must not stop the others)
            log.exception("retention: storage update of recording %s failed", rec.id)
            self.report.errors.append(f"recording {rec.id}: {exc}"[:300])


def apply_retention(
    session: Session,
    store: ObjectStore,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    tz: str = "Asia/Shanghai",
    recording_ids: Iterable[int] | None = None,
    batch_size: int = 200,
    should_stop: Callable[[], bool] | None = None,
    commit: bool = True,
) -> ApplyReport:
    """Apply the policy, the holds and the approved changes to every recording not yet disposed of
    (or to ``recording_ids``). Idempotent; with ``commit`` it commits each batch and stops cleanly
    between batches when ``should_stop()`` says so."""
    now = now or utcnow()
    report = ApplyReport()
    query = select(Recording.id).where(Recording.fixity_state != DISPOSED).order_by(Recording.id)
    if recording_ids is not None:
        query = query.where(Recording.id.in_(list(recording_ids)))
    last = 0
    while True:
        if should_stop is not None and should_stop():
            report.stopped = True
            break
        ids = list(session.scalars(query.where(Recording.id > last).limit(batch_size)))
        if not ids:
            break
        applier = Applier(session, store, policy, now, ZoneInfo(tz), report)
        applier.run(Batch.load(session, ids))
        last = ids[-1]
        if commit:
            session.commit()
    if report.changed and recording_ids is None:
        audit(
            session,
            "retention.run",
            object_type="retention",
            details={
                "seen": report.seen,
                "created": len(report.created),
                "extended": len(report.extended),
                "fixed": len(report.fixed),
                "shortened": len(report.shortened),
                "proposed": report.proposed[:100],
                "locked": len(report.locked),
                "hold_on": report.hold_on[:100],
                "hold_off": report.hold_off[:100],
                "errors": report.errors[:20],
                "stopped": report.stopped,
            },
        )
        if commit:
            session.commit()
    return report
