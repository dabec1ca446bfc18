"""Scans: run the rules over gathered facts and keep one flag per natural key (idempotent).

A scan inserts the flags it finds for the first time, updates those whose evidence changed (a kind
may change within its key: "not transferred" becomes "late transfer" when the recording arrives),
and clears those in its scope it no longer finds. Unchanged flags are not written at all, so running
a scan twice changes nothing. Each batch of devices is committed on its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from multiprocessing import get_context
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.compliance import access, gather, rules
from evidence_server.compliance.facts import ACCESS_KINDS, DEVICE_KINDS, Finding, Thresholds, iso
from evidence_server.compliance.models import ComplianceFlag, ComplianceScan, FlagEvent
from evidence_server.db import utcnow
from evidence_server.recordings.models import Recording

log = logging.getLogger(__name__)
_LOCK = threading.Lock()  # one scan at a time per process (a full scan and a device scan race otherwise)

#: who reads every flag and reviews; device administrators read their unit's; officers their own
REVIEWERS: tuple[Role, ...] = (Role.legal_affairs, Role.auditor)
READERS: tuple[Role, ...] = (*REVIEWERS, Role.device_admin, Role.officer)
EXPLAINERS: tuple[Role, ...] = (Role.device_admin, Role.officer)
SCANNERS: tuple[Role, ...] = (*REVIEWERS, Role.sysadmin)
#: who sees the figures and the evaluation report (device administrators: their own unit's)
FIGURE_VIEWERS: tuple[Role, ...] = (*REVIEWERS, Role.device_admin)

#: the columns ``upsert`` compares: id, key, kind, evidence digest, cleared at
Scope = Select[int, str, str, str, datetime | None]


def visibility(user: User) -> list[Any]:
    """The conditions on flags a user may read."""
    role = Role(user.role)
    if role in REVIEWERS:
        return []
    if role == Role.device_admin:
        return [ComplianceFlag.unit_id == user.unit_id]
    if role == Role.officer:
        mine = [ComplianceFlag.user_id == user.id]
        if user.officer_no:
            mine.append(ComplianceFlag.officer_no == user.officer_no)
        return [or_(*mine)]
    return [ComplianceFlag.id.is_(None)]


def flags_visible(user: User) -> Select[ComplianceFlag]:
    return select(ComplianceFlag).where(*visibility(user))


# --- keeping flags ----------------------------------------------------------------------------------


def digest(f: Finding) -> str:
    body = {
        "kind": f.kind.value,
        "at": iso(f.at),
        "evidence": f.evidence,
        "unit_id": f.unit_id,
        "device_serial": f.device_serial,
        "officer_no": f.officer_no,
        "user_id": f.user_id,
        "checkout_entry_id": f.checkout_entry_id,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _values(f: Finding, d: str) -> dict[str, Any]:
    return {
        "kind": f.kind.value,
        "at": f.at,
        "unit_id": f.unit_id,
        "device_serial": f.device_serial,
        "officer_no": f.officer_no,
        "user_id": f.user_id,
        "checkout_entry_id": f.checkout_entry_id,
        "evidence": json.loads(json.dumps(dict(f.evidence), default=str)),
        "evidence_digest": d,
    }


def upsert(session: Session, findings: Sequence[Finding], scope: Scope, now: datetime) -> Counter[str]:
    """Make the flags in ``scope`` (a select of id, key, kind, digest, cleared_at) match ``findings``."""
    counts: Counter[str] = Counter()
    existing = {r.key: r for r in session.execute(scope)}
    wanted: dict[str, Finding] = {}
    for f in findings:
        wanted.setdefault(f.key, f)
    new_rows, changed, events = [], [], []
    for key, f in wanted.items():
        d = digest(f)
        row = existing.get(key)
        if row is None:
            new_rows.append(
                {
                    "key": key,
                    **_values(f, d),
                    "state": "open",
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "updated_at": now,
                }
            )
            counts["raised"] += 1
        elif row.evidence_digest != d or row.cleared_at is not None:
            changed.append({"id": row.id, **_values(f, d), "cleared_at": None, "last_seen_at": now, "updated_at": now})
            action = "reopened" if row.cleared_at is not None else "changed"
            details = {"from": row.kind, "to": f.kind.value} if row.kind != f.kind.value else None
            events.append({"flag_id": row.id, "at": now, "action": action, "details": details})
            counts[action] += 1
    cleared = [
        {"id": r.id, "cleared_at": now, "updated_at": now}
        for key, r in existing.items()
        if key not in wanted and r.cleared_at is None
    ]
    events += [{"flag_id": c["id"], "at": now, "action": "cleared", "details": None} for c in cleared]
    counts["cleared"] += len(cleared)
    if new_rows:
        made = session.execute(insert(ComplianceFlag).returning(ComplianceFlag.id, ComplianceFlag.kind), new_rows)
        events += [{"flag_id": fid, "at": now, "action": "raised", "details": {"kind": kind}} for fid, kind in made]
    if changed:
        session.execute(update(ComplianceFlag), changed)
    if cleared:
        session.execute(update(ComplianceFlag), cleared)
    if events:
        session.execute(insert(FlagEvent), events)
    counts["found"] += len(wanted)
    return counts


def _scope(*conditions: Any) -> Scope:
    return select(
        ComplianceFlag.id,
        ComplianceFlag.key,
        ComplianceFlag.kind,
        ComplianceFlag.evidence_digest,
        ComplianceFlag.cleared_at,
    ).where(*conditions)


# --- scans --------------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    scan_id: int | None
    devices: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)


def _retrying(session: Session, work: Any) -> Counter[str]:
    """Run one batch and commit; a concurrent scan in another process that inserted the same key
    first makes the batch run once more (it then sees that flag and updates it)."""
    for attempt in (1, 2):
        try:
            counts: Counter[str] = work()
            session.commit()
            return counts
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


PARALLEL_FROM = 4 * gather.BATCH  # fewer devices than this are scanned in-process…
PARALLEL_RECORDINGS = 100_000  # …unless their histories hold this many recordings (a day's docks at 10M)
PARALLEL_DEVICES_COUNTED = 20  # fewer devices than this are never counted (an incremental scan after a dock)


def scan_workers(settings: Any, session: Session, devices: int, recordings: int = 0) -> int:
    """How many processes gather and judge the batches: one per CPU (at most 4) for a large scan on
    PostgreSQL (many devices, or a few with long histories), else the scan stays in this process
    (SQLite, tests, a device's incremental scan)."""
    if session.get_bind().dialect.name != "postgresql":
        return 1
    if devices < PARALLEL_FROM and recordings < PARALLEL_RECORDINGS:
        return 1
    wanted = settings.compliance_scan_workers or min(4, os.cpu_count() or 1)
    return max(1, wanted)


def _history(session: Session, serials: list[str]) -> int:
    """How many recordings these devices hold (what a scan of them reads): counted only for a handful or
    more, so that the incremental scan after one transfer costs no extra query."""
    if len(serials) < PARALLEL_DEVICES_COUNTED or session.get_bind().dialect.name != "postgresql":
        return 0
    q = select(func.count()).select_from(Recording).where(Recording.device_serial.in_(serials))
    return int(session.scalar(q) or 0)


_worker_session: Any = None


def _worker_init(database_url: str) -> None:
    global _worker_session
    from evidence_server.db import make_engine, make_sessionmaker

    _worker_session = make_sessionmaker(make_engine(database_url))


def _judge(batch: list[str], th: Thresholds, now: datetime) -> tuple[list[str], list[Finding], int]:
    """A worker's share: gather one batch of devices and run the rules (read-only)."""
    with _worker_session() as session:
        facts = gather.device_facts(session, batch)
    return batch, [f for s in batch if s in facts for f in rules.device_findings(facts[s], th, now)], len(facts)


def _device_scope(batch: list[str]) -> Scope:
    return _scope(ComplianceFlag.device_serial.in_(batch), ComplianceFlag.kind.in_([k.value for k in DEVICE_KINDS]))


def scan_devices(
    session: Session,
    settings: Any,
    serials: Iterable[str] | None = None,
    *,
    now: datetime | None = None,
    result: ScanResult | None = None,
) -> ScanResult:
    """Run the device rules for these devices (all of them when None) and keep their flags.

    Batches are gathered and judged in worker processes when the scan is large; the flags are
    written here, batch by batch, as the results come in.
    """
    now = now or utcnow()
    th = Thresholds.from_settings(settings)
    result = result or ScanResult(None)
    todo = sorted(set(serials)) if serials is not None else gather.all_serials(session)
    batches = list(gather.chunks(todo))
    workers = scan_workers(settings, session, len(todo), _history(session, todo) if serials is not None else 0)
    if workers > 1:
        if len(batches) < 2 * workers:  # a few devices with long histories: split them so every worker has some
            batches = list(gather.chunks(todo, max(1, -(-len(todo) // (2 * workers)))))
        with ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(settings.database_url,)
        ) as pool:
            for batch, findings, devices in pool.map(_judge, batches, repeat(th), repeat(now)):
                result.devices += devices
                result.by_kind.update(f.kind.value for f in findings)
                result.counts.update(
                    _retrying(session, lambda b=batch, f=findings: upsert(session, f, _device_scope(b), now))
                )
        return result
    for batch in batches:

        def work(batch: list[str] = batch) -> Counter[str]:
            facts = gather.device_facts(session, batch)
            findings = [f for s in batch if s in facts for f in rules.device_findings(facts[s], th, now)]
            result.by_kind.update(f.kind.value for f in findings)
            result.devices += len(facts)
            return upsert(session, findings, _device_scope(batch), now)

        result.counts.update(_retrying(session, work))
    return result


def scan_access(
    session: Session,
    settings: Any,
    user_ids: Iterable[int] | None = None,
    *,
    now: datetime | None = None,
    result: ScanResult | None = None,
) -> ScanResult:
    """Run rule 9 over the audit log's downloads and exports (of these users, or everyone's)."""
    now = now or utcnow()
    th = Thresholds.from_settings(settings)
    result = result or ScanResult(None)
    ids = sorted(set(user_ids)) if user_ids is not None else None

    def work() -> Counter[str]:
        events, users, holdings = gather.access_facts(session, ids)
        findings = access.access_findings(events, users, holdings, th)
        result.by_kind.update(f.kind.value for f in findings)
        conditions = [ComplianceFlag.kind.in_([k.value for k in ACCESS_KINDS])]
        if ids is not None:
            conditions.append(ComplianceFlag.user_id.in_(ids))
        return upsert(session, findings, _scope(*conditions), now)

    result.counts.update(_retrying(session, work))
    return result


def run_scan(
    session: Session,
    settings: Any,
    *,
    scope: str = "full",
    serials: Iterable[str] | None = None,
    user_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> ScanResult:
    """A recorded scan: ``full`` (every device and the audit log), ``devices`` or ``access``."""
    now = now or utcnow()
    with _LOCK:
        scan = ComplianceScan(scope=scope, as_of=now, started_at=utcnow())
        session.add(scan)
        session.commit()
        result = ScanResult(scan.id)
        if scope in ("full", "devices"):
            scan_devices(session, settings, None if scope == "full" else list(serials or ()), now=now, result=result)
        if scope in ("full", "access"):
            scan_access(session, settings, None if scope == "full" else list(user_ids or ()), now=now, result=result)
        scan.finished_at = utcnow()
        scan.counts = {"devices": result.devices, **result.counts, "by_kind": dict(result.by_kind)}
        session.commit()
        refresh_statistics(session, result)
    log.info("compliance scan %s (%s): %s", scan.id, scope, scan.counts)
    return result


def refresh_statistics(session: Session, result: ScanResult) -> None:
    """``ANALYZE compliance_flags`` on PostgreSQL after a scan that raised or cleared more than 50 flags
    and more than a tenth of those it found (autovacuum's proportions, applied to the scan's own flags:
    a device scan that raises more than 50 analyses too). The dashboard's plans rest on these
    statistics, and autovacuum may be off or behind: after a first scan that raised 128,279 flags into
    a table analysed while empty, the planner still expected 2 rows and the dashboard took 652-672 ms
    at 10M recordings; 506-511 ms once analysed. A table owner's statement: for another role PostgreSQL
    skips it with a warning. The scan's flags are committed before: statistics that could not be taken
    are logged, and the scan stands."""
    changed = result.counts.get("raised", 0) + result.counts.get("cleared", 0)
    if session.get_bind().dialect.name != "postgresql" or changed <= 50 + result.counts.get("found", 0) // 10:
        return
    try:
        session.execute(text("ANALYZE compliance_flags"))
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        log.warning("compliance scan %s: the flags' statistics were not refreshed: %s", result.scan_id, exc.orig)
