"""The rows check: every evidence-bearing row against the audit entries that recorded it.

One ``Binding`` per table says which entries are about a row and what each of them says of it (in
full for entries written since the services log every field, in part for older ones). Rows are read
in batches of ids, with the entries about each batch, so memory stays bounded on a large site; the
entries whose row is gone are found by one anti-join per table. The log itself is checked by
``evidence_server.audit.fullcheck``: together they bind every row to what was signed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, exists, or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import USER_EVIDENCE, User
from evidence_server.audit.evidence import LoggedDigests, fields_of, logged_digests  # noqa: F401  (used by the rows check)
from evidence_server.audit.models import AuditEvent
from evidence_server.binding import adopt, devices, grants
from evidence_server.binding.batches import batches
from evidence_server.binding.rules import GATHER, UNSAID, Finding, NoneOr, compare, fold
from evidence_server.cases.models import CASE_EVIDENCE, LINK_EVIDENCE, SHARE_EVIDENCE, Case, CaseLink, CaseShare
from evidence_server.extraction import issue
from evidence_server.extraction.models import IssuedDocument
from evidence_server.ledger.models import ENTRY_EVIDENCE, LedgerEntry
from evidence_server.ledger.rules import Kind
from evidence_server.recordings.models import Recording
from evidence_server.retention.models import (
    DISPOSED,
    HOLD_EVIDENCE,
    REQUEST_EVIDENCE,
    DisposalApproval,
    DisposalItem,
    DisposalRequest,
    LegalHold,
)
from evidence_server.stations.models import Station, station_evidence
from evidence_server.transfers.models import DOCKED_EVIDENCE, TASK_EVIDENCE, Transfer, index_digest

#: the digests of a recording as its entries record them (``block_map_root``: the root of its block map,
#: recorded with ``recording.verified`` once reads are verified block by block; ``sm3``: its SM3, recorded
#: with ``recording.verified`` since SM3 is computed on receipt, or by ``recording.sm3`` for one stored before;
#: entries without it say nothing of it, so older logs bind as they always did)
RECORDING_DIGESTS = ("blake3", "sha256", "sm3", "size", "block_map_root")
#: whose a recording is, as ``recording.verified`` records it since it names them: the unit that sees it (moved
#: to another unit, it would leave its own unit's sight and enter another's), the recorder, the officer (entries
#: without them say nothing of them, so older logs bind as they always did). Read from ``recording.verified``
#: alone: ``recording.repaired`` names the recorder that docked the bytes again, not the recording's.
RECORDING_OWNERS = ("unit_id", "device_serial", "officer_no")
#: the important mark's changes (``recording.important_*``): the mark keeps a recording from disposal until
#: it is reviewed, so a mark cleared or a review made up in the database would shorten what is kept
IMPORTANT_ACTIONS = ("recording.important_set", "recording.important_cleared", "recording.important_reviewed")
#: the entries that record a recording's digests: its verification, a repair of its stored copy, its disposal,
#: the SM3 computed afterwards for one stored before SM3, the block map made afterwards for one stored before
#: block maps (``recording.block_map``: reads are checked against that root from then on); and its mark
RECORDING_ACTIONS = (
    "recording.verified",
    "recording.repaired",
    "retention.disposed",
    "recording.sm3",
    "recording.block_map",
    *IMPORTANT_ACTIONS,
)
#: the columns of a recording the check compares (``_recording_rows``), read as plain rows
RECORDING_COLUMNS = (
    "id",
    *RECORDING_DIGESTS,
    *RECORDING_OWNERS,
    "fixity_state",
    "important",
    "important_reviewed_at",
)


@dataclass(frozen=True)
class Entry:
    seq: int
    action: str
    object_id: str | None
    actor_id: int | None
    details: dict[str, Any]


@dataclass(frozen=True)
class Binding:
    """How one table's rows are recorded in the log."""

    table: str
    model: Any
    object_type: str
    actions: tuple[str, ...]  # the actions of entries about its rows ("ledger.*": every action of that prefix)
    created_by: tuple[str, ...]  # at least one of these records each row
    says: Callable[[Entry], dict[str, Any]]  # the fields one entry states
    row: Callable[[Session, list[Any]], dict[Any, dict[str, Any]]]  # the rows' evidence, by id
    key_field: str | None = None  # the details field naming the row (None: the entry's object id)
    object_of: str = "id"  # the row's column that is its entries' object id (with key_field: the row it belongs to)
    key: type = int  # the type of the table's ids (a transfer's is the UUID its station made)
    #: the columns ``row`` reads, read as plain rows (None: whole ORM objects). A recording read whole is
    #: some fifty columns with the ffprobe JSON and a dozen times to convert, for the dozen ``row`` compares;
    #: any row read as an ORM object costs an identity-map entry and its state, for fields read once.
    columns: tuple[str, ...] | None = None
    #: the action of the entry from which the table is bound (None: always); before the log has it, the
    #: table's rows are not checked, and the report says so (``RowsReport.unbound``)
    since: str | None = None

    def action_filter(self) -> ColumnElement[bool]:
        exact = [a for a in self.actions if not a.endswith("*")]
        prefixes = [a[:-1] for a in self.actions if a.endswith("*")]
        return or_(AuditEvent.action.in_(exact), *[AuditEvent.action.startswith(p) for p in prefixes])

    def row_key(self, entry: Entry) -> Any:
        raw = entry.details.get(self.key_field) if self.key_field else entry.object_id
        try:
            return self.key(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None

    def key_expr(self) -> ColumnElement[Any]:
        if self.key is str:
            by_id: ColumnElement[Any] = AuditEvent.object_id.expression
            return by_id
        if self.key_field:
            by_field: ColumnElement[Any] = AuditEvent.details[self.key_field].as_integer()
            return by_field
        return cast(AuditEvent.object_id, Integer)


def _digests(entry: Entry) -> dict[str, Any]:
    if entry.action in IMPORTANT_ACTIONS:  # the mark after the change: a person's "to", the recorder's "mark"
        mark = entry.details.get("to") or entry.details.get("mark") or {}
        if "important" not in mark:
            return {}
        return {"important": bool(mark["important"]), "important_reviewed": mark.get("reviewed_at") is not None}
    out = {k: entry.details[k] for k in RECORDING_DIGESTS if k in entry.details}
    if entry.action == "recording.verified":
        out |= {k: entry.details[k] for k in RECORDING_OWNERS if k in entry.details}
        out["disposed"] = False
    elif entry.action == "retention.disposed":
        out["disposed"] = True
    return out


_RECORDING_FACTS = RECORDING_DIGESTS + RECORDING_OWNERS


def _recording_rows(session: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    out = {}
    for r in rows:
        facts = {k: getattr(r, k) for k in _RECORDING_FACTS}  # a column left out fails loudly
        out[r.id] = {
            **facts,
            "disposed": r.fixity_state == DISPOSED,
            "important": r.important,
            "important_reviewed": r.important_reviewed_at is not None,
        }
    return out


def _ledger_says(entry: Entry) -> dict[str, Any]:
    d = entry.details
    legacy = {k: d[k] for k in ("occurred_at", "recorded_at", "late", "kind", "override_reason") if k in d}
    return {**legacy, **(d.get("entry") or {})}


def _columns(names: tuple[str, ...]) -> Callable[[Session, list[Any]], dict[int, dict[str, Any]]]:
    return lambda _s, rows: {r.id: {n: getattr(r, n) for n in names} for r in rows}


def _link_says(entry: Entry) -> dict[str, Any]:
    d, unlink = entry.details, entry.action == "case.unlink"
    legacy: dict[str, Any] = {"unlinked": unlink, "case_id": d.get("case_id")}
    if entry.object_id is not None:
        legacy["recording_id"] = int(entry.object_id)
    if unlink:
        legacy["unlink_reason"] = d.get("reason")
    else:
        legacy |= {k: d[k] for k in ("origin", "reason", "checkout_entry_id") if k in d}
    return {**legacy, **(d.get("link") or {})}


def _link_rows(_s: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    return {r.id: {**{n: getattr(r, n) for n in LINK_EVIDENCE}, "unlinked": r.unlinked_at is not None} for r in rows}


def _hold_says(entry: Entry) -> dict[str, Any]:
    d, lifted = entry.details, entry.action == "retention.hold_lifted"
    legacy: dict[str, Any] = {"lifted": lifted}
    if lifted:
        legacy["lift_reason"] = d.get("reason")
    else:
        legacy |= {k: d[k] for k in ("target", "value", "unit_id", "reason") if k in d}
    return {**legacy, **(d.get("hold") or {})}


def _hold_rows(_s: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    return {r.id: {**{n: getattr(r, n) for n in HOLD_EVIDENCE}, "lifted": r.lifted_at is not None} for r in rows}


_DISPOSAL_STATUS = {
    "retention.disposal_requested": "pending",
    "retention.disposal_rejected": "rejected",
    "retention.disposal_executed": "executed",
}


def _disposal_says(entry: Entry) -> dict[str, Any]:
    d = entry.details
    if entry.action == "retention.disposal_approved":  # who approved: the two-person rule's evidence
        return {"approvers" + GATHER: entry.actor_id}
    out: dict[str, Any] = {"status": _DISPOSAL_STATUS[entry.action]}
    if entry.action == "retention.disposal_requested":
        out |= {"reason": d.get("reason"), "recording_ids": sorted(d.get("recording_ids") or []), "approvers": []}
    if entry.action == "retention.disposal_rejected":
        out["decision_note"] = d.get("note")
    return {**out, **(d.get("request") or {})}


def _disposal_rows(session: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    ids = [r.id for r in rows]
    items: dict[int, list[int]] = {i: [] for i in ids}
    approvers: dict[int, set[int]] = {i: set() for i in ids}
    for req_id, rec_id in session.execute(
        select(DisposalItem.request_id, DisposalItem.recording_id).where(DisposalItem.request_id.in_(ids))
    ):
        items[req_id].append(rec_id)
    for req_id, user_id in session.execute(
        select(DisposalApproval.request_id, DisposalApproval.user_id).where(DisposalApproval.request_id.in_(ids))
    ):
        approvers[req_id].add(user_id)
    return {
        r.id: {
            **{n: getattr(r, n) for n in REQUEST_EVIDENCE},
            "recording_ids": sorted(items[r.id]),
            "approvers": sorted(approvers[r.id], key=repr),
        }
        for r in rows
    }


#: the entries about a transfer: its opening at a dock (or by a push), its task, its receipt
TRANSFER_ACTIONS = ("transfer.docked", "push.recording_opened", "transfer.task", "transfer.receipt")
#: the facts of a transfer read as they are; and the columns the check reads: those, with the index and the
#: refused files for their digest
_TRANSFER_FACTS = (*(k for k in DOCKED_EVIDENCE if k != "index_sha256"), *TASK_EVIDENCE, "manifest_blake3")
TRANSFER_COLUMNS = ("id", *_TRANSFER_FACTS, "index", "rejected")


def _transfer_says(entry: Entry) -> dict[str, Any]:
    d = entry.details
    if entry.action == "transfer.task":
        return {k: d[k] for k in TASK_EVIDENCE if k in d}
    if entry.action == "transfer.receipt":
        return {k: d[k] for k in ("manifest_blake3",) if k in d}
    return {k: d[k] for k in DOCKED_EVIDENCE if k in d}


def _transfer_rows(_s: Session, rows: list[Any]) -> dict[str, dict[str, Any]]:
    return {
        r.id: {
            **{k: getattr(r, k) for k in _TRANSFER_FACTS},
            "index_sha256": index_digest(r.index, r.rejected),
        }
        for r in rows
    }


def _case_says(entry: Entry) -> dict[str, Any]:
    d = entry.details
    if "case" in d:
        return dict(d["case"])
    if entry.action == "case.create":  # written before the whole case was recorded
        legacy = {k: d[k] for k in ("number", "name", "unit_id") if k in d}
        return legacy | ({"created_via": d["via"]} if "via" in d else {})
    return dict.fromkeys(d.get("changed_from") or {}, UNSAID)  # changed, but not recorded to what


def _case_rows(_s: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    return {r.id: fields_of(r, CASE_EVIDENCE) for r in rows}


def _share_says(entry: Entry) -> dict[str, Any]:
    d, revoked = entry.details, entry.action == "case.unshare"
    if revoked:
        return {"revoked": True}
    said = {k: d[k] for k in SHARE_EVIDENCE if k in d}
    return {**said, "case_id": int(entry.object_id or 0), "revoked": False}


def _share_rows(_s: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    return {r.id: {**{k: getattr(r, k) for k in SHARE_EVIDENCE}, "revoked": r.revoked_at is not None} for r in rows}


#: the entries about a user: their creation (or adoption, see ``adopt``) and every change an administrator made
USER_ACTIONS = (*adopt.USER_CREATED, "user.enabled", "user.disabled", "user.role_changed", "user.password_reset")


def _user_says(entry: Entry) -> dict[str, Any]:
    d = entry.details
    if "user" in d:
        return dict(d["user"])
    if entry.action == "user.created":  # written before the whole user was recorded: a user starts active
        return {**{k: d[k] for k in USER_EVIDENCE if k in d}, "active": True}
    if entry.action in ("user.enabled", "user.disabled"):
        return {"active": entry.action == "user.enabled"}
    if entry.action == "user.role_changed" and "to" in d:
        return {"role": d["to"]}
    return {}


#: the entries about a station: its creation (or adoption), enrolment, token rotation, revocation, new codes
STATION_ACTIONS = (
    *adopt.STATIONS.created,
    "station.enrolled",
    "station.reenrolled",
    "station.token_rotated",
    "station.revoked",
    "station.credentials_replaced",
    "station.code_issued",
    "station.reenrolment_issued",
)


def _station_says(entry: Entry) -> dict[str, Any]:
    d = entry.details
    if "station" in d:
        said = dict(d["station"])
        if said.get("previous_token") is not None:  # cleared without an entry once the new token is used
            said["previous_token"] = NoneOr(said["previous_token"])
        return said
    # written before the whole station was recorded: what each entry tells, and what it changed unrecorded
    if entry.action == "station.created":
        named: dict[str, Any] = {k: d[k] for k in ("name", "unit_id") if k in d}
        return {**named, "revoked": False, "token": None, "previous_token": None}
    if entry.action == "station.revoked":
        return {"revoked": True, "previous_token": None}
    if entry.action in ("station.enrolled", "station.reenrolled"):
        return {"revoked": False, "token": UNSAID, "previous_token": None}
    if entry.action == "station.token_rotated":
        return {"token": UNSAID, "previous_token": UNSAID}
    if entry.action == "station.credentials_replaced":
        return {"token": None, "previous_token": None}
    return {}


def _station_rows(_s: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    return {r.id: station_evidence(r) for r in rows}


def _issued_says(entry: Entry) -> dict[str, Any]:
    return {k: entry.details[k] for k in ("document", "json_sha256", "pdf_sha256") if k in entry.details}


def _issued_rows(_s: Session, rows: list[Any]) -> dict[int, dict[str, Any]]:
    return {r.id: issue.evidence(r) for r in rows}


BINDINGS = (
    Binding(
        "recordings",
        Recording,
        "recording",
        RECORDING_ACTIONS,
        ("recording.verified",),
        _digests,
        _recording_rows,
        columns=RECORDING_COLUMNS,
    ),
    Binding(
        "ledger_entries",
        LedgerEntry,
        "ledger_entry",
        ("ledger.*",),
        tuple(f"ledger.{kind.value}" for kind in Kind),
        _ledger_says,
        _columns(ENTRY_EVIDENCE),
        columns=("id", *ENTRY_EVIDENCE),
    ),
    Binding(
        "case_links",
        CaseLink,
        "recording",
        ("case.link", "case.unlink"),
        ("case.link",),
        _link_says,
        _link_rows,
        key_field="link_id",
        object_of="recording_id",
        columns=("id", *LINK_EVIDENCE),
    ),
    Binding(  # a case's number, unit, matter, officers and state: who sees its footage, and how long it is kept
        "cases",
        Case,
        "case",
        ("case.create", "case.update"),
        ("case.create",),
        _case_says,
        _case_rows,
        columns=("id", *CASE_EVIDENCE),
    ),
    Binding(  # a case opened beyond its own unit: a share made up in the database would let another unit see it
        "case_shares",
        CaseShare,
        "case",
        ("case.share", "case.unshare"),
        ("case.share",),
        _share_says,
        _share_rows,
        key_field="share_id",
        object_of="case_id",
        columns=("id", *SHARE_EVIDENCE, "revoked_at"),
    ),
    Binding(
        "legal_holds",
        LegalHold,
        "legal_hold",
        ("retention.hold_placed", "retention.hold_lifted"),
        ("retention.hold_placed",),
        _hold_says,
        _hold_rows,
        columns=("id", *HOLD_EVIDENCE),
    ),
    Binding(
        "disposal_requests",
        DisposalRequest,
        "disposal_request",
        (*_DISPOSAL_STATUS, "retention.disposal_approved"),
        ("retention.disposal_requested",),
        _disposal_says,
        _disposal_rows,
        columns=("id", *REQUEST_EVIDENCE),
    ),
    Binding(  # where and when footage docked, whose it is, what the device held, and its case and matter
        "transfers",
        Transfer,
        "transfer",
        TRANSFER_ACTIONS,
        ("transfer.docked", "push.recording_opened"),
        _transfer_says,
        _transfer_rows,
        columns=TRANSFER_COLUMNS,
        key=str,
    ),
    Binding(  # who a user is, what they may do and where, whether they may log in: from the users' adoption on
        "users",
        User,
        "user",
        USER_ACTIONS,
        adopt.USER_CREATED,
        _user_says,
        _columns(USER_EVIDENCE),
        columns=("id", *USER_EVIDENCE),
        since=adopt.ADOPTED,
    ),
    Binding(  # whose recorders a station takes in, whether it is revoked, which token opens it: from the adoption on
        "stations",
        Station,
        "station",
        STATION_ACTIONS,
        adopt.STATIONS.created,
        _station_says,
        _station_rows,
        columns=("id", "name", "unit_id", "revoked_at", "token_hash", "previous_token_hash"),
        since=adopt.STATIONS.mark,
    ),
    Binding(  # extraction lists and handover receipts: both forms as kept, against the digests logged at issue
        "issued_documents",
        IssuedDocument,
        issue.OBJECT_TYPE,
        issue.ISSUED_ACTIONS,
        issue.ISSUED_ACTIONS,
        _issued_says,
        _issued_rows,
    ),
)


@dataclass
class RowsReport:
    rows: dict[str, int] = field(default_factory=dict)  # rows checked, by table
    findings: list[Finding] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)  # tables not bound yet (their ``since`` not in the log)

    @property
    def ok(self) -> bool:
        return not self.findings


def _batches(session: Session, b: Binding, ids: list[Any] | None = None) -> Iterator[list[Any]]:
    return batches(session, b.model, b.columns, ids, below=b.key())


def _entries_about(session: Session, b: Binding, rows: list[Any]) -> dict[int, list[Entry]]:
    object_ids = sorted({str(getattr(r, b.object_of)) for r in rows})
    stmt = (
        select(AuditEvent.seq, AuditEvent.action, AuditEvent.object_id, AuditEvent.actor_id, AuditEvent.details)
        .where(AuditEvent.object_type == b.object_type, AuditEvent.object_id.in_(object_ids), b.action_filter())
        .order_by(AuditEvent.seq)
    )
    out: dict[int, list[Entry]] = {}
    for seq, action, object_id, actor_id, details in session.execute(stmt):
        entry = Entry(seq, action, object_id, actor_id, details or {})
        key = b.row_key(entry)
        if key is not None:
            out.setdefault(key, []).append(entry)
    return out


def check_binding(session: Session, b: Binding, report: RowsReport, ids: list[Any] | None = None) -> None:
    if b.since is not None and not adopt.logged(session, b.since):
        report.unbound.append(b.table)
        return
    count = 0
    for rows in _batches(session, b, ids):
        entries = _entries_about(session, b, rows)
        evidence = b.row(session, rows)
        for r in rows:
            count += 1
            mine = entries.get(r.id, [])
            if not any(e.action in b.created_by for e in mine):
                report.findings.append(Finding(b.table, r.id, None))
                continue
            said = fold((e.seq, e.action, b.says(e)) for e in mine)
            report.findings.extend(compare(b.table, r.id, evidence[r.id], said))
    report.rows[b.table] = count
    key = b.key_expr()
    gone = (
        select(key, AuditEvent.seq, AuditEvent.action)
        .where(
            AuditEvent.object_type == b.object_type,
            AuditEvent.action.in_(b.created_by),
            key.is_not(None),
            ~exists().where(b.model.id == key),
        )
        .order_by(AuditEvent.seq)
    )
    for row_id, seq, action in session.execute(gone):
        report.findings.append(Finding(b.table, b.key(row_id), None, seq=seq, action=action))


def _check_once(session: Session, only: dict[str, list[Any]] | None = None) -> RowsReport:
    """Every binding's rows (or only the tables and rows in ``only``) against the log; the devices against
    their ledger (``devices``: the ledger being bound to the log, that binds them too); the units stations
    serve against the log's grants (``grants``)."""
    report = RowsReport()
    for b in BINDINGS:
        if only is None:
            check_binding(session, b, report)
        elif b.table in only:
            check_binding(session, b, report, only[b.table])
    if only is None or devices.TABLE in only:
        ids = None if only is None else only[devices.TABLE]
        report.rows[devices.TABLE] = devices.check_devices(session, report.findings, ids)
    if only is None or grants.TABLE in only:  # a few rows a station: read again whole
        report.rows[grants.TABLE] = grants.check_grants(session, report.findings)
    return report


def check_rows(session: Session) -> RowsReport:
    """Every evidence-bearing row against the log: each field that differs, each row the log lacks, each
    row the log has and the database lost.

    A row and its entries are read by separate statements, so a lawful change committed between them (a
    hold lifted while the check runs) looks like a row that differs from the log. A finding is therefore
    kept only if its row, read again after the whole first reading ended, differs again: what was tampered
    with stays so, what was changing has settled.
    """
    first = _check_once(session)
    if first.ok:
        return first
    named: dict[str, set[Any]] = {}
    for f in first.findings:
        named.setdefault(f.table, set()).add(f.row_id)
    session.expunge_all()  # read those rows again, not the first reading's objects
    again = _check_once(session, {table: sorted(ids) for table, ids in named.items()})
    seen = {f.message() for f in first.findings}
    return RowsReport(first.rows, [f for f in again.findings if f.message() in seen], first.unbound)
