"""The rules' facts from the database, in a few set-based queries per batch of devices (no per-row
queries), so that a full scan over a million recordings stays a matter of seconds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, or_, select, type_coerce, union
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.audit.models import AuditEvent
from evidence_server.cases.models import Case, CaseLink, CaseShare
from evidence_server.compliance.access import ACCESS_ACTIONS, AccessEvent, Holdings, UserInfo
from evidence_server.compliance.facts import (
    DeviceFacts,
    Dock,
    HandOut,
    Incident,
    Mismatch,
    Return,
    Segment,
    Vanished,
)
from evidence_server.compliance.profile import MIN_SEGMENTS, learn
from evidence_server.db import UTCDateTime
from evidence_server.ledger.models import Device, DockMismatch, LedgerEntry, LendRequest
from evidence_server.ledger.rules import HAND_OUT, Kind, effective
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer, VanishedFile
from evidence_server.uploads.models import IntegrityIncident

BATCH = 200  # devices per round of queries


def chunks(items: Sequence[str], size: int = BATCH) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def all_serials(session: Session) -> list[str]:
    """Every device the system knows of: registered, docked or with recordings."""
    q = union(
        select(Device.serial), select(Transfer.device_serial).distinct(), select(Recording.device_serial).distinct()
    )
    return sorted(session.scalars(select(q.subquery().c[0])))


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# --- the ledger ---------------------------------------------------------------------------------------

HAND_OUT_COLS = (
    LedgerEntry.id,
    LedgerEntry.device_id,
    LedgerEntry.unit_id,
    LedgerEntry.kind,
    LedgerEntry.occurred_at,
    LedgerEntry.expected_return_at,
    LedgerEntry.officer_no,
    LedgerEntry.officer_id,
    LedgerEntry.enforcement_matter,
    LedgerEntry.case_number,
    LedgerEntry.clock_offset_s,
    LedgerEntry.lend_request_id,
    LedgerEntry.refers_to_id,
    LedgerEntry.corrections,
    LedgerEntry.task_start_at,
    LedgerEntry.task_end_at,
)


def _lookup(session: Session, key: Any, value: Any, ids: set[int]) -> dict[Any, Any]:
    return dict(session.execute(select(key, value).where(key.in_(ids))).all()) if ids else {}


def _returns(
    rows: list[tuple[Any, ...]], corrections: dict[int, list[dict[str, Any]]], device_ids: dict[int, str]
) -> tuple[dict[str, list[Return]], dict[int, tuple[int, datetime]]]:
    """Each device's returns (corrections applied), and the return of each checkout it closed."""
    back: dict[int, tuple[int, datetime]] = {}
    returns: dict[str, list[Return]] = defaultdict(list)
    for r in rows:
        if r[3] != Kind.return_.value:
            continue
        at = (
            r[4]
            if r[0] not in corrections
            else _when(effective({"occurred_at": r[4]}, corrections[r[0]])["occurred_at"])
        )
        assert at is not None
        returns[device_ids[r[1]]].append(Return(r[0], at))
        if r[12] is not None:
            back[r[12]] = (r[0], at)
    return returns, back


def _corrected(r: tuple[Any, ...], corrections: list[dict[str, Any]] | None) -> tuple[Any, ...]:
    """A checkout's row with its corrections applied (the columns of HAND_OUT_COLS)."""
    if not corrections:
        return r
    names = ("occurred_at", "expected_return_at", "enforcement_matter", "case_number", "clock_offset_s")
    v = effective(
        {
            **dict(zip(names, (r[4], r[5], r[8], r[9], r[10]), strict=True)),
            "task_start_at": r[14],
            "task_end_at": r[15],
        },
        corrections,
    )
    return (
        *r[:4], _when(v["occurred_at"]), _when(v["expected_return_at"]), r[6], r[7], v["enforcement_matter"],
        v["case_number"], v["clock_offset_s"], *r[11:14], _when(v["task_start_at"]), _when(v["task_end_at"]),
    )  # fmt: skip


def _ledger(session: Session, device_ids: dict[int, str]) -> tuple[dict[str, list[HandOut]], dict[str, list[Return]]]:
    kinds = [k.value for k in HAND_OUT] + [Kind.return_.value, Kind.correction.value]
    query = (
        select(*_columns(session, HAND_OUT_COLS))
        .where(LedgerEntry.device_id.in_(list(device_ids)), LedgerEntry.kind.in_(kinds))
        .order_by(LedgerEntry.device_id, LedgerEntry.seq)
    )
    rows = [tuple(r) for r in session.connection().execute(query)]
    # columns: id, device_id, unit_id, kind, occurred_at, expected_return_at, officer_no, officer_id,
    # enforcement_matter, case_number, clock_offset_s, lend_request_id, refers_to_id, corrections,
    # task_start_at, task_end_at
    corrections: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r[3] == Kind.correction.value and r[12] is not None:
            corrections[r[12]].append(r[13] or {})
    hand_out_kinds = {k.value for k in HAND_OUT}
    outs = [_corrected(r, corrections.get(r[0])) for r in rows if r[3] in hand_out_kinds]
    officer_units = _lookup(session, User.id, User.unit_id, {r[7] for r in outs if r[7]})
    lend_states = _lookup(session, LendRequest.id, LendRequest.state, {r[11] for r in outs if r[11]})
    returns, back = _returns(rows, corrections, device_ids)
    hand_outs: dict[str, list[HandOut]] = defaultdict(list)
    for eid, device_id, unit_id, kind, occurred, expected, officer_no, officer_id, matter, case_number, offset, \
            lend_id, _refers, _corr, task_start, task_end in outs:  # fmt: skip
        ret = back.get(eid)
        assert occurred is not None
        serial = device_ids[device_id]
        hand_outs[serial].append(
            HandOut(
                eid,
                serial,
                unit_id,
                occurred,
                expected,
                ret[1] if ret else None,
                ret[0] if ret else None,
                kind,
                officer_no,
                officer_id,
                officer_units.get(officer_id) if officer_id else None,
                matter,
                case_number,
                offset,
                lend_id,
                lend_states.get(lend_id) if lend_id else None,
                task_start,
                task_end,
            )  # fmt: skip
        )
    return hand_outs, returns


# --- docks, recordings, index entries ------------------------------------------------------------------

REC_COLS = (
    Recording.id,
    Recording.device_serial,
    Recording.unit_id,
    Recording.officer_no,
    Recording.original_path,
    Recording.size,
    Recording.name_started_at,
    Recording.container_started_at,
    Recording.container_created_at,
    Recording.device_mtime,
    Recording.duration_s,
    Recording.codec,
    Recording.width,
    Recording.height,
    Recording.encoder,
    Recording.fixity_state,
    Recording.verified_at,
    Recording.docked_at,
    Recording.transfer_id,
    Recording.media_profile,
)


def _columns(session: Session, columns: Sequence[Any]) -> list[Any]:
    """PostgreSQL hands back aware times itself: skip the UTC type's per-value Python step there (a full
    scan reads millions of them); SQLite needs it (its times come back naive)."""
    if session.get_bind().dialect.name != "postgresql":
        return list(columns)
    return [
        type_coerce(c, DateTime(timezone=True)).label(c.key) if isinstance(c.type, UTCDateTime) else c for c in columns
    ]


DOCK_COLS = (
    Transfer.id,
    Transfer.device_serial,
    Transfer.unit_id,
    Transfer.docked_at,
    Transfer.officer_no,
    Transfer.clock_offset_s,
    Transfer.station_id,
    Transfer.index,
    Transfer.rejected,
)


def _first_listed(transfers: Sequence[Any]) -> tuple[dict[tuple[str, int], tuple[Any, dict[str, Any]]], set[str]]:
    """Each file (path, size) with the earliest dock whose index listed it; the paths stations refused."""
    seen: dict[tuple[str, int], tuple[Any, dict[str, Any]]] = {}
    refused: set[str] = set()
    for t in sorted(transfers, key=lambda t: t.docked_at):
        for e in t.index or ():
            key = (e.get("path"), int(e.get("size") or 0))
            if key not in seen:
                seen[key] = (t, e)
        refused.update(r.get("path") for r in t.rejected or () if r.get("path"))
    return seen, refused


def _held_segment(
    row: Sequence[Any],
    first: tuple[Any, dict[str, Any]] | None,
    offsets: dict[str, float | None],
    lengths: dict[float, timedelta],
    family: str | None,
) -> Segment:
    """A transferred file as the rules see it. Positional unpacking: a Row's attribute access costs a
    microsecond each, and a full scan reads a million rows of twenty columns."""
    (rid, serial, unit_id, officer_no, path, size, named, contained, created, mtime, duration, codec, width, height,
     encoder, fixity, verified, docked, transfer_id, media_profile) = row  # fmt: skip
    seen_at = docked if first is None or docked < first[0].docked_at else first[0].docked_at
    start = named or contained
    if start is not None and duration:
        length = lengths.get(duration)
        if length is None:  # the few segment durations of a device, made timedeltas once
            length = lengths[duration] = timedelta(seconds=duration)
        end = start + length  # what the probe stores as name/container end
    else:
        end = mtime if mtime and start and mtime >= start else None
    return Segment(
        serial, path, size, start, end, offsets.get(transfer_id), rid, unit_id, officer_no, verified, seen_at,
        first[0].id if first else transfer_id, duration, codec, width, height, encoder, created, fixity, family,
        named is not None, media_profile,
    )  # fmt: skip


def _listed_segment(t: Any, key: tuple[str, int], e: dict[str, Any], family: str | None) -> Segment:
    """A file a dock's index listed that never arrived."""
    start, mtime = _when(e.get("started_at")), _when(e.get("mtime"))
    return Segment(
        device_serial=t.device_serial,
        path=key[0],
        size=key[1],
        start=start,
        end=mtime if mtime and start and mtime >= start else None,
        clock_offset_s=t.clock_offset_s,
        unit_id=t.unit_id,
        officer_no=t.officer_no,
        seen_at=t.docked_at,
        seen_transfer_id=t.id,
        family=family,
    )


def _segments(
    transfers: Sequence[Any], recordings: Sequence[Any], family: str | None
) -> tuple[list[Segment], frozenset[str]]:
    """One segment per file (path, size): the recording where it was transferred, else the earliest
    index entry that listed it; and the paths the device offered but the station refused."""
    offsets = {t.id: t.clock_offset_s for t in transfers}
    seen, refused = _first_listed(transfers)
    lengths: dict[float, timedelta] = {}
    held = {(row[4], row[5]) for row in recordings}
    out = [_held_segment(row, seen.get((row[4], row[5])), offsets, lengths, family) for row in recordings]
    out += [_listed_segment(t, key, e, family) for key, (t, e) in seen.items() if key not in held]
    return out, frozenset(refused - {p for p, _ in seen})


def device_facts(session: Session, serials: Sequence[str]) -> dict[str, DeviceFacts]:
    """The facts of these devices (a batch of at most a few hundred), in ten queries."""
    devices = {
        d.serial: d
        for d in session.execute(
            select(Device.id, Device.serial, Device.family, Device.unit_id).where(Device.serial.in_(serials))
        ).all()
    }
    hand_outs, returns = _ledger(session, {d.id: s for s, d in devices.items()}) if devices else ({}, {})
    transfers: dict[str, list[Any]] = defaultdict(list)
    conn = session.connection()  # Core rows: the ORM's per-row bookkeeping is not needed for plain columns
    for t in conn.execute(select(*_columns(session, DOCK_COLS)).where(Transfer.device_serial.in_(serials))):
        transfers[t.device_serial].append(t)
    recordings: dict[str, list[Any]] = defaultdict(list)
    for r in conn.execute(select(*_columns(session, REC_COLS)).where(Recording.device_serial.in_(serials))):
        recordings[r[1]].append(r)
    dock_at = {t.id: t.docked_at for ts in transfers.values() for t in ts}
    vanished: dict[str, list[Vanished]] = defaultdict(list)
    for v in session.scalars(select(VanishedFile).where(VanishedFile.device_serial.in_(serials))):
        vanished[v.device_serial].append(
            Vanished(
                v.path,
                v.size,
                v.last_seen_transfer_id,
                v.noticed_transfer_id,
                v.noticed_at,
                dock_at.get(v.last_seen_transfer_id),
            )
        )
    mismatches: dict[str, list[Mismatch]] = defaultdict(list)
    by_id = {d.id: s for s, d in devices.items()}
    if by_id:
        for m in session.scalars(select(DockMismatch).where(DockMismatch.device_id.in_(list(by_id)))):
            mismatches[by_id[m.device_id]].append(
                Mismatch(
                    m.transfer_id, m.docked_at, m.docked_officer_no, m.holder_entry_id, m.holder_officer_no, m.reason
                )
            )
    incidents = _incidents(session, serials)
    families = _family_profiles(session, {d.family for d in devices.values() if d.family})
    out = {}
    for serial in serials:
        dev = devices.get(serial)
        ts, rs = transfers.get(serial, []), recordings.get(serial, [])
        if dev is None and not ts and not rs:
            continue
        family = dev.family if dev else None
        segments, refused = _segments(ts, rs, family)
        unit = dev.unit_id if dev else (ts[0].unit_id if ts else rs[0].unit_id)
        out[serial] = DeviceFacts(
            serial=serial,
            unit_id=unit,
            family=family,
            segments=segments,
            hand_outs=hand_outs.get(serial, []),
            returns=returns.get(serial, []),
            docks=[Dock(t.id, t.docked_at, t.unit_id, t.officer_no, t.clock_offset_s, t.station_id) for t in ts],
            mismatches=mismatches.get(serial, []),
            vanished=vanished.get(serial, []),
            incidents=incidents.get(serial, []),
            known_paths=refused,
            family_profile=families.get(family or "", {}),
        )
    return out


FAMILY_SAMPLE = 400  # recordings a family's profile is learnt from (the newest)


def _family_profiles(session: Session, families: set[str]) -> dict[str, dict[str, str]]:
    """Each family's profile, from the newest probed recordings of its devices (none for a new family)."""
    out = {}
    for family in sorted(families):
        rows = session.execute(
            select(Recording.media_profile)
            .join(Device, Device.serial == Recording.device_serial)
            .where(Device.family == family, Recording.media_profile.is_not(None))
            .order_by(Recording.id.desc())
            .limit(FAMILY_SAMPLE)
        ).all()
        out[family] = learn((p for (p,) in rows if p), minimum=2 * MIN_SEGMENTS)
    return out


def _incidents(session: Session, serials: Sequence[str]) -> dict[str, list[Incident]]:
    rec_serial = select(Recording.id).where(Recording.device_serial.in_(serials))
    dock_serial = select(Transfer.id).where(Transfer.device_serial.in_(serials))
    rows = session.execute(
        select(IntegrityIncident, Recording.device_serial, Transfer.device_serial)
        .outerjoin(Recording, Recording.id == IntegrityIncident.recording_id)
        .outerjoin(Transfer, Transfer.id == IntegrityIncident.transfer_id)
        .where(or_(IntegrityIncident.recording_id.in_(rec_serial), IntegrityIncident.transfer_id.in_(dock_serial)))
    ).all()
    out: dict[str, list[Incident]] = defaultdict(list)
    for inc, by_rec, by_dock in rows:
        out[by_rec or by_dock].append(
            Incident(inc.id, inc.kind, inc.at, inc.recording_id, inc.transfer_id, inc.details or {})
        )
    return out


# --- audit entries for rule 9 --------------------------------------------------------------------------


def access_facts(
    session: Session, user_ids: Iterable[int] | None = None
) -> tuple[list[AccessEvent], dict[int, UserInfo], Holdings]:
    q = select(
        AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action, AuditEvent.object_id, AuditEvent.details
    ).where(AuditEvent.actor_type == "user", AuditEvent.action.in_(ACCESS_ACTIONS), AuditEvent.actor_id.is_not(None))
    if user_ids is not None:
        q = q.where(AuditEvent.actor_id.in_(list(user_ids)))
    events = []
    for seq, at, actor, action, object_id, details in session.execute(q):
        try:
            oid = int(object_id) if object_id is not None else None
        except ValueError:
            continue
        if action == "case.export":
            listed = (details or {}).get("recordings")  # the export audits the recording ids it packed
            n = len(listed) if isinstance(listed, list) else int(listed or 0)
            events.append(AccessEvent(seq, at, actor, action, case_id=oid, recordings=n))
        else:
            events.append(AccessEvent(seq, at, actor, action, recording_id=oid))
    ids = {e.user_id for e in events}
    users = (
        {
            u.id: UserInfo(u.id, u.unit_id, u.role, u.officer_no, u.username)
            for u in session.execute(
                select(User.id, User.unit_id, User.role, User.officer_no, User.username).where(User.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    rec_ids = sorted({e.recording_id for e in events if e.recording_id is not None})
    recording_cases: dict[int, set[int]] = defaultdict(set)
    recording_officer: dict[int, str | None] = {}
    for i in range(0, len(rec_ids), 5000):
        part = rec_ids[i : i + 5000]
        for rid, cid in session.execute(
            select(CaseLink.recording_id, CaseLink.case_id).where(CaseLink.recording_id.in_(part))
        ):
            recording_cases[rid].add(cid)
        recording_officer.update(
            session.execute(select(Recording.id, Recording.officer_no).where(Recording.id.in_(part))).all()
        )
    case_ids = {c for cs in recording_cases.values() for c in cs} | {e.case_id for e in events if e.case_id}
    case_unit = (
        dict(session.execute(select(Case.id, Case.unit_id).where(Case.id.in_(case_ids))).all()) if case_ids else {}
    )
    shared_users: dict[int, set[int]] = defaultdict(set)
    shared_units: dict[int, set[int]] = defaultdict(set)
    if case_ids:
        for cid, uid, unit in session.execute(
            select(CaseShare.case_id, CaseShare.user_id, CaseShare.unit_id).where(CaseShare.case_id.in_(case_ids))
        ):
            if uid is not None:
                shared_users[cid].add(uid)
            if unit is not None:
                shared_units[cid].add(unit)
    holdings = Holdings(
        {k: frozenset(v) for k, v in recording_cases.items()},
        recording_officer,
        case_unit,
        {k: frozenset(v) for k, v in shared_users.items()},
        {k: frozenset(v) for k, v in shared_units.items()},
    )
    return events, users, holdings
