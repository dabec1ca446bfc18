"""Disposal: what is due, requests approved by two different people, removal from storage, certificates.

A disposal removes the bytes (the recording's object and its derived files) and keeps everything
else: the recording's row with both fingerprints, its retention state, and a certificate signed by
the server's key naming who asked, who approved, who carried it out, when and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire.documents import sign, utc_iso
from evidence_server.accounts.models import User
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.media.models import DerivedMedia
from evidence_server.recordings.models import Recording
from evidence_server.retention.models import (
    DISPOSED,
    REQUEST_EVIDENCE,
    DisposalApproval,
    DisposalCertificate,
    DisposalItem,
    DisposalRequest,
    LegalHold,
    RetentionState,
)
from evidence_server.retention.rules import is_due
from evidence_server.retention.service import APPROVALS_NEEDED, RetentionError, need_reason, run_for
from evidence_server.storage import ObjectStore
from evidence_server.storage.base import ObjectLockedError

log = logging.getLogger(__name__)
MAX_ITEMS = 1000


@dataclass
class DueRow:
    recording: Recording
    state: RetentionState
    requested: bool  # already in a pending disposal request


def due(session: Session, now: datetime | None = None, *, held: bool = False, limit: int = 500) -> list[DueRow]:
    """Recordings whose retention ended (as of the last run of the job), not disposed of; ``held``: those a
    hold keeps instead."""
    now = now or utcnow()
    rows = session.execute(
        select(Recording, RetentionState)
        .join(RetentionState, RetentionState.recording_id == Recording.id)
        .where(
            RetentionState.retain_until.is_not(None),
            RetentionState.retain_until <= now,
            RetentionState.disposed_at.is_(None),
            RetentionState.held.is_(held),
        )
        .order_by(RetentionState.retain_until, Recording.id)
        .limit(limit)
    ).all()
    pending = set(
        session.scalars(
            select(DisposalItem.recording_id)
            .join(DisposalRequest, DisposalRequest.id == DisposalItem.request_id)
            .where(DisposalRequest.status == "pending")
        )
    )
    return [DueRow(rec, state, rec.id in pending) for rec, state in rows]


def _check_items(session: Session, ctx: ServerContext, ids: list[int], request_id: int | None = None) -> None:
    """Refuse unless every recording is known, not disposed of, not held and due, judged afresh now."""
    recs = {r.id: r for r in session.scalars(select(Recording).where(Recording.id.in_(ids)))}
    unknown = sorted(set(ids) - set(recs))
    if unknown:
        raise RetentionError("unknown_recording", f"no recordings {unknown}", 404, recording_ids=unknown)
    gone = sorted(rid for rid, r in recs.items() if r.fixity_state == DISPOSED)
    if gone:
        raise RetentionError("already_disposed", f"recordings {gone} were disposed of already", recording_ids=gone)
    run_for(session, ctx, ids)
    states = {
        s.recording_id: s for s in session.scalars(select(RetentionState).where(RetentionState.recording_id.in_(ids)))
    }
    held = sorted(rid for rid in ids if states[rid].held)
    if held:
        holds = [h.id for h in session.scalars(select(LegalHold).where(LegalHold.lifted_at.is_(None)))]
        raise RetentionError(
            "held",
            f"recordings {held} are under a legal hold and can never be disposed of while it lasts",
            recording_ids=held,
            active_holds=holds[:50],
            request_id=request_id,
        )
    now = utcnow()
    early = {
        rid: states[rid].retain_until for rid in ids if not is_due(states[rid].retain_until, now, held=states[rid].held)
    }
    if early:
        until = {str(rid): utc_iso(u) if u else None for rid, u in sorted(early.items())}
        raise RetentionError(
            "not_due",
            f"recordings {sorted(early)} are not due yet: their retention has not "
            "ended (none: kept for good or while their case is open)",
            recording_ids=sorted(early),
            retain_until=until,
            request_id=request_id,
        )


def request_disposal(
    session: Session,
    ctx: ServerContext,
    user: User,
    recording_ids: list[int],
    reason: str,
    request: Request | None = None,
) -> DisposalRequest:
    reason = need_reason(reason)
    ids = sorted(set(recording_ids))
    if not ids or len(ids) > MAX_ITEMS:
        raise RetentionError("bad_items", f"name between 1 and {MAX_ITEMS} recordings", 422)
    _check_items(session, ctx, ids)
    busy = sorted(
        set(
            session.scalars(
                select(DisposalItem.recording_id)
                .join(DisposalRequest, DisposalRequest.id == DisposalItem.request_id)
                .where(DisposalRequest.status == "pending", DisposalItem.recording_id.in_(ids))
            )
        )
    )
    if busy:
        raise RetentionError(
            "already_requested", f"recordings {busy} are in a pending disposal request already", recording_ids=busy
        )
    req = DisposalRequest(reason=reason, requested_by_id=user.id)
    session.add(req)
    session.flush()
    session.add_all(DisposalItem(request_id=req.id, recording_id=rid) for rid in ids)
    audit(
        session,
        "retention.disposal_requested",
        request=request,
        object_type="disposal_request",
        object_id=req.id,
        details={"recording_ids": ids, "reason": reason, "request": fields_of(req, REQUEST_EVIDENCE)},
    )
    return req


def get_request(session: Session, request_id: int, *, pending: bool = True) -> DisposalRequest:
    req = session.get(DisposalRequest, request_id)
    if req is None:
        raise RetentionError("unknown_request", f"no disposal request {request_id}", 404)
    if pending and req.status != "pending":
        raise RetentionError("not_pending", f"disposal request {request_id} is {req.status}", request_id=request_id)
    return req


def approvals_of(session: Session, request_id: int) -> list[DisposalApproval]:
    return list(
        session.scalars(
            select(DisposalApproval).where(DisposalApproval.request_id == request_id).order_by(DisposalApproval.id)
        )
    )


def items_of(session: Session, request_id: int) -> list[DisposalItem]:
    return list(
        session.scalars(
            select(DisposalItem).where(DisposalItem.request_id == request_id).order_by(DisposalItem.recording_id)
        )
    )


def approve_disposal(
    session: Session, user: User, request_id: int, note: str | None, request: Request | None = None
) -> DisposalRequest:
    req = get_request(session, request_id)
    if any(a.user_id == user.id for a in approvals_of(session, request_id)):
        raise RetentionError(
            "already_approved",
            "you approved this already: the second approval must come from another person",
            request_id=request_id,
        )
    approval = DisposalApproval(request_id=request_id, user_id=user.id, note=note)
    session.add(approval)
    session.flush()
    audit(
        session,
        "retention.disposal_approved",
        request=request,
        object_type="disposal_request",
        object_id=request_id,
        details={
            "note": note,
            "approvals": len(approvals_of(session, request_id)),
            "approval": {"id": approval.id, **fields_of(approval, ("user_id", "approved_at", "note"))},
        },
    )
    return req


def reject_disposal(
    session: Session, user: User, request_id: int, note: str | None, request: Request | None = None
) -> DisposalRequest:
    req = get_request(session, request_id)
    req.decision_note = need_reason(note)
    req.status, req.decided_at, req.decided_by_id = "rejected", utcnow(), user.id
    audit(
        session,
        "retention.disposal_rejected",
        request=request,
        object_type="disposal_request",
        object_id=request_id,
        details={"note": req.decision_note, "request": fields_of(req, REQUEST_EVIDENCE)},
    )
    return req


def _storage_blocks(store: ObjectStore, key: str, now: datetime, bypass: bool) -> str | None:
    lock = store.lock_of(key) if store.exists(key) else None
    if lock is None:
        return None
    if lock.legal_hold:
        return "the object store holds a legal hold on it"
    if lock.until is not None and lock.until > now and (lock.mode == "COMPLIANCE" or not bypass):
        return f"the object store locks it ({lock.mode}) until {utc_iso(lock.until)}"
    return None


def _require_approvals(approvals: list[DisposalApproval], request_id: int) -> None:
    if len({a.user_id for a in approvals}) < APPROVALS_NEEDED:
        raise RetentionError(
            "needs_two_approvals",
            f"disposal needs the approval of {APPROVALS_NEEDED} different "
            f"people; request {request_id} has {len(approvals)}",
            request_id=request_id,
            approvals=len(approvals),
        )


def _recordings_of(session: Session, items: list[DisposalItem]) -> dict[int, Recording]:
    stmt = select(Recording).where(Recording.id.in_([i.recording_id for i in items]))
    return {r.id: r for r in session.scalars(stmt)}


def _refuse_storage_locked(ctx: ServerContext, recs: dict[int, Recording], request_id: int) -> None:
    """Refuse the whole request, before anything is deleted, when the object store would refuse one recording."""
    now, bypass = utcnow(), ctx.settings.retention_bypass_governance
    blocked = {rid: why for rid, r in recs.items() if (why := _storage_blocks(ctx.store, r.storage_key, now, bypass))}
    if blocked:
        raise RetentionError(
            "storage_locked",
            f"WORM storage refuses to delete recordings {sorted(blocked)}",
            reasons={str(k): v for k, v in blocked.items()},
            request_id=request_id,
        )


def _people(session: Session, req: DisposalRequest, approvals: list[DisposalApproval], user: User) -> dict[int, User]:
    """The users a certificate names: who asked, who approved, who carries it out."""
    ids = [a.user_id for a in approvals] + [req.requested_by_id, user.id]
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


def _remove_or_stop(session: Session, store: ObjectStore, rec: Recording, request_id: int) -> dict[str, Any]:
    """Remove the recording's bytes; on a storage failure keep what was already disposed of, and stop."""
    try:
        return _remove(session, store, rec)
    except (ObjectLockedError, OSError) as exc:
        session.commit()  # what was disposed of stays disposed of, with its certificate
        raise RetentionError(
            "storage_failed",
            f"the object store failed on recording {rec.id}: {exc}",
            502,
            request_id=request_id,
        ) from exc


def execute_disposal(
    session: Session, ctx: ServerContext, user: User, request_id: int, request: Request | None = None
) -> list[DisposalCertificate]:
    """Dispose of every item of a request two different people approved; each gets its certificate."""
    req = get_request(session, request_id)
    approvals = approvals_of(session, request_id)
    _require_approvals(approvals, request_id)
    items = [i for i in items_of(session, request_id) if i.state != "disposed"]
    _check_items(session, ctx, [i.recording_id for i in items], request_id)
    recs = _recordings_of(session, items)
    _refuse_storage_locked(ctx, recs, request_id)
    people = _people(session, req, approvals, user)
    certificates = []
    for item in items:
        rec = recs[item.recording_id]
        removed = _remove_or_stop(session, ctx.store, rec, request_id)
        certificates.append(_certify(session, ctx, req, item, rec, approvals, people, user, removed))
    req.status, req.decided_at, req.decided_by_id = "executed", utcnow(), user.id
    audit(
        session,
        "retention.disposal_executed",
        request=request,
        object_type="disposal_request",
        object_id=request_id,
        details={
            "certificates": [c.number for c in certificates],
            "approvers": [a.user_id for a in approvals],
            "request": fields_of(req, REQUEST_EVIDENCE),
        },
    )
    return certificates


def _remove(session: Session, store: ObjectStore, rec: Recording) -> dict[str, Any]:
    """Delete the recording's bytes and its derived files; keep the rows."""
    derived = list(session.scalars(select(DerivedMedia).where(DerivedMedia.recording_id == rec.id)))
    for d in derived:
        if d.storage_key:
            store.delete(d.storage_key)
            d.state = DISPOSED
    store.delete(rec.storage_key)
    return {
        "backend": type(store).__name__,
        "storage_key": rec.storage_key,
        "derived_keys": [d.storage_key for d in derived if d.storage_key],
    }


def _person(people: dict[int, User], uid: int | None) -> dict[str, Any] | None:
    u = people.get(uid) if uid is not None else None
    return None if u is None else {"user_id": u.id, "username": u.username, "name": u.display_name, "role": u.role}


def _recording_facts(rec: Recording) -> dict[str, Any]:
    """What a certificate keeps of a disposed recording: its fingerprints and where it came from."""
    return {
        "id": rec.id,
        "blake3": rec.blake3,
        "sha256": rec.sha256,
        "size": rec.size,
        "original_name": rec.original_name,
        "device_serial": rec.device_serial,
        "officer_no": rec.officer_no,
        "unit_id": rec.unit_id,
        "started_at": utc_iso(rec.name_started_at) if rec.name_started_at else None,
        "verified_at": utc_iso(rec.verified_at),
    }


def certificate_document(
    number: str,
    now: datetime,
    rec: Recording,
    state: RetentionState,
    req: DisposalRequest,
    approvals: list[DisposalApproval],
    people: dict[int, User],
    executor: User,
    removed: dict[str, Any],
) -> dict[str, Any]:
    """The (unsigned) disposal certificate: the recording, its retention, who asked, approved and executed,
    and what was removed from storage. Pure."""
    return {
        "type": "custodia.disposal_certificate",
        "version": 1,
        "number": number,
        "issued_at": utc_iso(now),
        "recording": _recording_facts(rec),
        "retention": {
            "retain_until": utc_iso(state.retain_until) if state.retain_until else None,
            "basis": state.basis,
            "case_id": state.case_id,
        },
        "request": {
            "id": req.id,
            "reason": req.reason,
            "requested_at": utc_iso(req.requested_at),
            "requested_by": _person(people, req.requested_by_id),
        },
        "approvals": [
            {**(_person(people, a.user_id) or {}), "approved_at": utc_iso(a.approved_at), "note": a.note}
            for a in approvals
        ],
        "executed": {"by": _person(people, executor.id), "at": utc_iso(now)},
        "storage": removed,
    }


def _certify(
    session: Session,
    ctx: ServerContext,
    req: DisposalRequest,
    item: DisposalItem,
    rec: Recording,
    approvals: list[DisposalApproval],
    people: dict[int, User],
    user: User,
    removed: dict[str, Any],
) -> DisposalCertificate:
    """Issue the recording's signed certificate, mark it disposed of, and audit it."""
    now = utcnow()
    state = session.get(RetentionState, rec.id)
    assert state is not None
    cert = DisposalCertificate(number="pending", recording_id=rec.id, request_id=req.id, issued_at=now, document={})
    session.add(cert)
    session.flush()
    cert.number = f"DC-{now:%Y}-{cert.id:06d}"
    document = certificate_document(cert.number, now, rec, state, req, approvals, people, user, removed)
    cert.document = sign(document, ctx.signer)
    rec.fixity_state = DISPOSED
    state.disposed_at = now
    item.state = "disposed"
    audit(
        session,
        "retention.disposed",
        object_type="recording",
        object_id=rec.id,
        actor=user,
        details={
            "certificate": cert.number,
            "request_id": req.id,
            "blake3": rec.blake3,
            "sha256": rec.sha256,
            "storage_key": rec.storage_key,
        },
    )
    return cert


def certificate_of(session: Session, recording_id: int) -> DisposalCertificate | None:
    return session.scalar(select(DisposalCertificate).where(DisposalCertificate.recording_id == recording_id))


def gone(session: Session, request: Request, rec: Recording) -> HTTPException:
    """The answer for a disposed recording's content: 410 Gone, naming its disposal certificate."""
    cert = certificate_of(session, rec.id)
    number = cert.number if cert else None
    audit(
        session,
        "recording.content_refused",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={"disposed": True, "certificate": number},
    )
    session.commit()
    return HTTPException(
        410,
        {
            "code": "disposed",
            "certificate": number,
            "certificate_id": cert.id if cert else None,
            "message": f"recording {rec.id} was disposed of on approval (certificate {number}); "
            "its record and fingerprints are kept, its bytes are not",
        },
    )
