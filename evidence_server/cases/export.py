"""The court package of a case, streamed: the originals straight from the object store into a ZIP,
preceded by the signed manifest, its detached signature and time-stamp, the signer's key, the README,
the checksum files, the audit log's checkpoint, the custody events with their inclusion proofs and the
ledger (layout: custodia_wire/package.py, ``custodia.case-package/2``).

Only the small documents are built in memory; each original is read block by block, and each block
is checked against the recording's block map before it is sent (evidence_server/custody). Should a
block no longer match, the stream stops there (the receiver gets a truncated, unreadable archive,
never a complete one with a wrong original), the copy is marked damaged and an incident recorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from custodia_wire import documents, extraction, fingerprint, keys
from custodia_wire import package as pkg
from evidence_server.accounts.models import Unit, User
from evidence_server.audit.models import AuditEvent
from evidence_server.audit.service import entry_dict
from evidence_server.cases import courtlog, lists, zipstream
from evidence_server.cases.models import Case
from evidence_server.cases.service import CaseError, recordings_of_case
from evidence_server.context import ServerContext
from evidence_server.custody import reads
from evidence_server.custody.damage import CopyDamaged
from evidence_server.db import utcnow
from evidence_server.extraction.models import IssuedDocument
from evidence_server.fixity.service import backfill_sm3
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.push.views import track_of
from evidence_server.recordings.custody import MapUntrusted
from evidence_server.recordings.models import FIXITY_BAD, Recording

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class ExportIntegrityError(RuntimeError):
    """An original's stored bytes no longer match its fingerprints: the export stops."""


@dataclass
class Package:
    filename: str
    size: int
    manifest_blake3: str
    recordings: list[int]
    entries: list[zipstream.Entry]
    modified: datetime
    checkpoint_size: int = 0  # the audit log's size at the checkpoint the package carries
    manifest_sha256: str = ""  # what `sha256sum manifest.json` prints: the package's digest on a handover receipt
    extraction_list: str = ""  # the id of the package's 电子数据提取清单 (extraction-list.json inside)

    def stream(self) -> Iterator[bytes]:
        return zipstream.stream(self.entries, modified=self.modified)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return documents.utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: _plain(getattr(obj, c.key)) for c in obj.__mapper__.column_attrs if c.key not in skip}


def case_summary(session: Session, case: Case) -> dict[str, Any]:
    unit = session.get(Unit, case.unit_id)
    return {
        "id": case.id,
        "number": case.number,
        "name": case.name,
        "enforcement_matter": case.enforcement_matter,
        "unit": {"id": case.unit_id, "code": unit.code if unit else None, "name": unit.name if unit else None},
        "officers": case.officers,
        "status": case.status,
        "opened_on": _plain(case.opened_on),
        "closed_on": _plain(case.closed_on),
    }


def original_path(rec: Recording) -> str:
    return f"recordings/{rec.id}-{pkg.safe_name(rec.original_name)}"


def custody_events(session: Session, rec: Recording, tree_size: int) -> list[AuditEvent]:
    """The audit entries about a recording and its transfer inside the checkpointed tree, in log order."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    and_(AuditEvent.object_type == "recording", AuditEvent.object_id == str(rec.id)),
                    and_(AuditEvent.object_type == "transfer", AuditEvent.object_id == rec.transfer_id),
                ),
                AuditEvent.seq < tree_size,
            )
            .order_by(AuditEvent.seq)
        )
    )


def custody_document(
    rec: Recording, events: list[AuditEvent], tree_size: int, proofs: dict[int, list[str]]
) -> tuple[bytes, list[dict[str, Any]]]:
    """The custody entries of a recording, each with its leaf hash and its inclusion proof."""
    entries = [
        {
            **entry_dict(ev),
            "leaf_hash": ev.leaf_hash,
            "inclusion": {"leaf_index": ev.seq, "tree_size": tree_size, "audit_path": proofs[ev.seq]},
        }
        for ev in events
    ]
    doc = {
        "format": pkg.CUSTODY_FORMAT_V2,
        "recording": {
            "id": rec.id,
            "blake3": rec.blake3,
            "sha256": rec.sha256,
            "sm3": rec.sm3,
            "path": original_path(rec),
        },
        "checkpoint": pkg.CHECKPOINT_NAME,
        "note": "audit-log entries; leaf_hash = SHA-256(0x00 || canonical JSON of the entry's leaf fields); "
        "inclusion: the RFC 9162 audit path of the entry in the log the checkpoint signed",
        "entries": entries,
    }
    return pkg.json_bytes(doc), entries


def ledger_document(session: Session, serial: str) -> tuple[bytes, list[dict[str, Any]]]:
    rows = session.execute(
        select(LedgerEntry)
        .join(Device, Device.id == LedgerEntry.device_id)
        .where(Device.serial == serial)
        .order_by(LedgerEntry.seq, LedgerEntry.id)
    ).scalars()
    entries = [{**_row(e), "device_serial": serial} for e in rows]
    doc = {
        "format": pkg.LEDGER_FORMAT,
        "device_serial": serial,
        "entries": entries,
        "note": "checkout-ledger entries (append-only; corrections are entries that refer to the one corrected)",
    }
    return pkg.json_bytes(doc), entries


def _original_chunks(ctx: ServerContext, src: reads.Original) -> Iterator[bytes]:
    try:
        yield from reads.chunks(ctx, src, "package export")
    except CopyDamaged as exc:
        log.error("export stopped: %s", exc)
        raise ExportIntegrityError(str(exc)) from exc


def _chunks_of(ctx: ServerContext, src: reads.Original) -> Callable[[], Iterator[bytes]]:
    return lambda: _original_chunks(ctx, src)


def _fixed(name: str, data: bytes) -> zipstream.Entry:
    return zipstream.Entry(name, len(data), lambda: [data])


def _give_sm3(ctx: ServerContext, recs: list[Recording]) -> None:
    """Recordings stored before SM3 was computed are read (and checked) once now, so that the package's
    SM3SUMS names every original; the outcome (their SM3, or their damage) is taken from its own commits,
    which the export's transaction may not see."""
    if not recs:
        return
    ids = [r.id for r in recs]
    backfill_sm3(ctx, files=len(ids), ids=ids, bytes_per_second=0)
    with ctx.sessionmaker() as fresh:
        now = {
            rid: (sm3, state)
            for rid, sm3, state in fresh.execute(
                select(Recording.id, Recording.sm3, Recording.fixity_state).where(Recording.id.in_(ids))
            )
        }
    for rec in recs:
        set_committed_value(rec, "sm3", now[rec.id][0])
        set_committed_value(rec, "fixity_state", now[rec.id][1])


def _exportable(
    session: Session, ctx: ServerContext, user: User, case: Case
) -> tuple[list[Recording], dict[int, reads.Original]]:
    """The case's recordings with each original's verified source; refuses an empty or damaged case."""
    recs = recordings_of_case(session, user, case.id)
    if not recs:
        raise CaseError("empty_case", f"case {case.number} has no recordings to export", 409)
    _give_sm3(ctx, [r for r in recs if r.sm3 is None])
    bad = [r.id for r in recs if r.fixity_state in FIXITY_BAD]
    if bad:
        raise CaseError(
            "fixity_failed",
            f"recordings {bad} failed their fixity check: their stored bytes are not "
            "the evidence ingested, so the case cannot be exported; see the integrity incidents",
            409,
        )
    try:  # each original's block map (made now, from verified bytes, for one stored before there were maps)
        sources = {rec.id: reads.original(ctx, session, rec, "package export") for rec in recs}
    except (CopyDamaged, MapUntrusted) as exc:
        raise CaseError("fixity_failed", f"{exc}; the case cannot be exported", 409) from exc
    return recs, sources


def _evidence_documents(
    session: Session, recs: list[Recording], checkpoint: courtlog.ExportCheckpoint, signer: keys.PublicKey
) -> tuple[list[dict[str, Any]], list[zipstream.Entry]]:
    """The signer's key, the checkpoint (and its time-stamp), each recording's custody and each device's
    ledger: their manifest items and their ZIP members, in package order."""
    items, small = [], []

    def add(path: str, data: bytes, item: dict[str, Any]) -> None:
        small.append(_fixed(path, data))
        items.append(item)

    events = {rec.id: custody_events(session, rec, checkpoint.tree_size) for rec in recs}
    proofs = courtlog.proofs(session, checkpoint.tree_size, sorted({e.seq for evs in events.values() for e in evs}))
    key_pem = signer.pem().encode()
    note = checkpoint.note.encode("utf-8")
    add(pkg.KEY_NAME, key_pem, pkg.file_item(pkg.KEY_NAME, key_pem, "key", fingerprint=signer.fingerprint))
    add(pkg.CHECKPOINT_NAME, note, pkg.file_item(pkg.CHECKPOINT_NAME, note, "checkpoint"))
    if checkpoint.token:
        token = checkpoint.token
        add(pkg.CHECKPOINT_TST_NAME, token, pkg.file_item(pkg.CHECKPOINT_TST_NAME, token, "timestamp"))
    for rec in recs:
        data, entries = custody_document(rec, events[rec.id], checkpoint.tree_size, proofs)
        path = f"custody/recording-{rec.id}.json"
        add(path, data, pkg.entries_item(path, data, "custody", pkg.AUDIT_LEAF, entries, recording_id=rec.id))
    for rec in recs:  # positions where the recording was made (issue 20), digest-checked like every file
        track = track_of(session, rec.id)
        if track is not None:
            data = documents.jcs({**track, "recording_id": rec.id})
            path = f"tracks/recording-{rec.id}.json"
            add(path, data, pkg.file_item(path, data, "track", recording_id=rec.id, source=track["source"]))
    for serial in sorted({r.device_serial for r in recs}):
        data, entries = ledger_document(session, serial)
        path = f"ledger/device-{pkg.safe_name(serial)}.json"
        add(path, data, pkg.entries_item(path, data, "ledger", pkg.CANONICAL_BLAKE3, entries, device_serial=serial))
    return items, small


def _original_item(rec: Recording) -> dict[str, Any]:
    """The manifest item of an original: its fingerprints and the recording's row."""
    fp = fingerprint.Fingerprint(rec.blake3, rec.sha256, rec.size, rec.sm3)
    row = _row(rec, skip=("probe", "storage_key", "blake3", "sha256", "sm3", "size"))
    return pkg.file_item(original_path(rec), fp, "original", recording=row)


def _manifest_bytes(
    ctx: ServerContext,
    user: User,
    summary: dict[str, Any],
    now: datetime,
    signer: keys.PublicKey,
    checkpoint: courtlog.ExportCheckpoint,
    items: list[dict[str, Any]],
) -> bytes:
    """The canonical (JCS) bytes of the package manifest that the server signs."""
    manifest = pkg.build_manifest_v2(
        case=summary,
        exported_at=documents.utc_iso(now),
        exported_by={"id": user.id, "username": user.username, "name": user.display_name},
        server={
            "alg": signer.alg,
            "key_id": ctx.key_id,
            "public_key": ctx.public_key_b64,
            "fingerprint": signer.fingerprint,
        },
        checkpoint={
            "path": pkg.CHECKPOINT_NAME,
            "origin": checkpoint.origin,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
        },
        files=items,
    )
    return documents.jcs(manifest)


def case_list(
    session: Session, ctx: ServerContext, user: User, case: Case, request: Request | None = None
) -> IssuedDocument:
    """The 电子数据提取清单 the case's package carries now (issued once for the same content and person)."""
    recs = recordings_of_case(session, user, case.id)
    if not recs:
        raise CaseError("empty_case", f"case {case.number} has no recordings", 409)
    files = [(r, original_path(r)) for r in recs]
    return lists.package_list(
        session, ctx.signer, user, case, case_summary(session, case), files, request, ctx.settings
    )


def build(session: Session, ctx: ServerContext, user: User, case: Case, request: Request | None = None) -> Package:
    """Everything but the originals' bytes, ready to stream."""
    recs, sources = _exportable(session, ctx, user, case)
    checkpoint = courtlog.checkpoint_now(ctx)
    now = utcnow()
    signer = ctx.public_key
    items, small = _evidence_documents(session, recs, checkpoint, signer)
    summary = case_summary(session, case)
    listed = lists.package_list(
        session, ctx.signer, user, case, summary, [(r, original_path(r)) for r in recs], request, ctx.settings
    )
    for name, data, role in (
        (extraction.PACKAGE_LIST_JSON, extraction.to_bytes(listed.document), extraction.LIST_ROLE),
        (extraction.PACKAGE_LIST_PDF, listed.pdf, extraction.LIST_PDF_ROLE),
    ):
        small.append(_fixed(name, data))
        items.append(pkg.file_item(name, data, role, document=listed.uid))
    items += [_original_item(rec) for rec in recs]
    readme = pkg.readme_v2(
        summary, signer.fingerprint, len(recs), timestamped=bool(courtlog.tsa_url(ctx)), alg=signer.alg
    )
    items.insert(0, pkg.file_item(pkg.README_NAME, readme, "readme"))
    sums = [(name, pkg.sums_file(items, algo)) for name, algo in pkg.SUMS]
    items[1:1] = [pkg.file_item(name, data, "checksums") for name, data in sums]
    manifest_bytes = _manifest_bytes(ctx, user, summary, now, signer, checkpoint, items)
    members = [
        _fixed(pkg.MANIFEST_NAME, manifest_bytes),
        _fixed(pkg.SIGNATURE_NAME, ctx.signer.sign(manifest_bytes)),
    ]
    token = courtlog.stamp(ctx, manifest_bytes, f"manifest of case {case.number}")
    if token:
        members.append(_fixed(pkg.MANIFEST_TST_NAME, token))
    members += [
        _fixed(pkg.README_NAME, readme),
        *(_fixed(name, data) for name, data in sums),
        *small,
    ]
    members += [zipstream.Entry(original_path(rec), rec.size, _chunks_of(ctx, sources[rec.id])) for rec in recs]
    size = zipstream.archive_size((m.name, m.size) for m in members)
    filename = f"case-{pkg.safe_name(case.number)}-{now:%Y%m%dT%H%M%SZ}.zip"
    return Package(
        filename,
        size,
        fingerprint.of_bytes(manifest_bytes).blake3,
        [r.id for r in recs],
        members,
        now,
        checkpoint.tree_size,
        "sha256:" + hashlib.sha256(manifest_bytes).hexdigest(),
        listed.uid,
    )
