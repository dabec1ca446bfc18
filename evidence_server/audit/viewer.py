"""What an auditor does with the log in the browser: search it, check one entry's inclusion against
the latest signed checkpoint, export chosen entries as a signed excerpt, and rerun the full check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import audit_excerpt, auditlog, merkle
from custodia_wire.auditlog import LogError
from evidence_server.accounts.models import User
from evidence_server.audit import fullcheck
from evidence_server.audit import log as auditlog_db
from evidence_server.audit.models import AuditCheckpoint, AuditEvent
from evidence_server.audit.service import entry_dict
from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow

PAGE = 100


@dataclass(frozen=True)
class Query:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None


def search(session: Session, q: Query, limit: int = PAGE) -> list[AuditEvent]:
    """Newest first; actor and action match a prefix (``case.`` finds every case action), objects exactly."""
    stmt = select(AuditEvent)
    if q.actor:
        stmt = stmt.where(AuditEvent.actor_name.startswith(q.actor, autoescape=True))
    if q.action:
        stmt = stmt.where(AuditEvent.action.startswith(q.action, autoescape=True))
    if q.object_type:
        stmt = stmt.where(AuditEvent.object_type == q.object_type)
    if q.object_id:
        stmt = stmt.where(AuditEvent.object_id == q.object_id)
    if q.since is not None:
        stmt = stmt.where(AuditEvent.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEvent.at < q.until)
    if q.before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < q.before_seq)
    return list(session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(limit)))


@dataclass(frozen=True)
class Proof:
    """An entry's inclusion in the latest checkpoint, and whether it checked out (with the reason if not)."""

    entry: dict[str, Any]
    checkpoint: AuditCheckpoint | None
    audit_path: list[str]
    ok: bool
    problem: str | None


def entry_proof(ctx: ServerContext, session: Session, seq: int) -> Proof | None:
    """The entry ``seq`` with its inclusion proof, verified here as a verifier would (signature and path)."""
    ev = session.scalar(select(AuditEvent).where(AuditEvent.seq == seq))
    if ev is None:
        return None
    entry = entry_dict(ev)
    cp = auditlog_db.latest_checkpoint(session)
    if cp is None or seq >= cp.tree_size:
        return Proof(entry, cp, [], False, "not_checkpointed")
    try:
        doc = auditlog_db.inclusion_document(session, seq, cp)
        checkpoint = auditlog.verify_note(cp.note, ctx.note_keys)
        auditlog.verify_inclusion_document(doc, checkpoint)
    except LogError as exc:
        return Proof(entry, cp, [], False, str(exc))
    return Proof(entry, cp, list(doc["audit_path"]), True, None)


def export_excerpt(
    ctx: ServerContext, session: Session, user: User, seqs: list[int], purpose: str | None = None
) -> dict[str, Any]:
    """The signed excerpt of entries ``seqs`` under the latest checkpoint (issued now if they are newer); audited."""
    wanted = sorted(set(seqs))
    if not wanted:
        raise LogError("choose at least one entry")
    if len(wanted) > audit_excerpt.MAX_ENTRIES:
        raise LogError(f"an excerpt holds at most {audit_excerpt.MAX_ENTRIES} entries")
    cp = auditlog_db.latest_checkpoint(session)
    if cp is None or wanted[-1] >= cp.tree_size:
        cp, _ = auditlog_db.issue_checkpoint(ctx, session)
    rows = {ev.seq: ev for ev in session.scalars(select(AuditEvent).where(AuditEvent.seq.in_(wanted)))}
    missing = [s for s in wanted if s not in rows or s >= cp.tree_size]
    if missing:
        raise LogError(f"no entries {missing[:10]} in the checkpointed log")
    leaves = list(auditlog_db.stored_leaf_hashes(session, cp.tree_size))
    inclusions = [
        {
            "entry": entry_dict(rows[s]),
            "leaf_index": s,
            "audit_path": [h.hex() for h in merkle.inclusion_proof(s, leaves)],
        }
        for s in wanted
    ]
    doc = audit_excerpt.make_excerpt(
        cp.note,
        inclusions,
        exported_at=auditlog.entry_time(utcnow()),
        exported_by=user.username,
        purpose=(purpose or "").strip()[:500] or None,
        private_key=ctx.signer,
    )
    audit(
        session,
        "audit.excerpt_exported",
        actor=user,
        object_type="audit_log",
        object_id=cp.tree_size,
        details={"entries": wanted[:1000], "count": len(wanted), "purpose": doc["purpose"]},
    )
    return doc


def verify_now(ctx: ServerContext, session: Session, user: User) -> fullcheck.VerifyReport:
    """The full check of the log (every entry rehashed, every checkpoint's root and signature); its result audited."""
    report = fullcheck.verify_log(session, ctx.note_keys)
    audit(
        session,
        "audit.verified",
        actor=user,
        object_type="audit_log",
        details={"ok": report.ok, "first_bad_seq": report.first_bad_seq, "problems": report.problems[:20]},
    )
    return report
