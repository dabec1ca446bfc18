"""The fixity sweep: re-read stored recordings, check BLAKE3, SHA-256 and SM3, report orphans.

SM3 is checked where the log recorded one; a recording stored before SM3 was computed is given its SM3
by the same read, once BLAKE3 and SHA-256 showed the copy intact (``recording.sm3``, see
``backfill_sm3``).

The digests a stored copy is checked against come from the log (the recording's ``recording.verified``
entry), never from the recording's row: a row edited in the database must not make the sweep call an
intact original damaged. A row that differs from its entry is reported as such (``rows_differ``).

Paced (bytes per second, files per run) so it never starves ingest; reads happen outside any
database transaction and each result is written in a short one. A mismatch marks the recording
``failed`` for good, raises an IntegrityIncident for legal affairs and is audited; the content
route refuses to serve such a recording.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from custodia_wire.fingerprint import Fingerprint, Hasher
from evidence_server.audit.evidence import logged_digests
from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.recordings.models import FIXITY_BAD, Recording, fixity_sound
from evidence_server.storage import ObjectStore
from evidence_server.uploads import keylock
from evidence_server.uploads.models import IntegrityIncident

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class Throttle:
    """Sleeps so that reading averages at most ``rate`` bytes per second (0: no limit)."""

    def __init__(self, rate: int) -> None:
        self.rate, self.done, self.started = rate, 0, time.monotonic()

    def consumed(self, n: int) -> None:
        self.done += n
        if self.rate > 0:
            ahead = self.done / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)


def read_fingerprint(store: ObjectStore, key: str, throttle: Throttle) -> Fingerprint | None:
    """The fingerprints (SM3 included) of a stored object, read at the throttle's pace; None if it is gone."""
    if not store.exists(key):
        return None
    h = Hasher(sm3=True)
    for block in store.iter_range(key, chunk=CHUNK):
        h.update(block)
        throttle.consumed(len(block))
    return h.result()


def judge(expected: Fingerprint, got: Fingerprint | None) -> str:
    """ok, failed or missing. Pure."""
    if got is None:
        return "missing"
    if expected.sm3 is not None and got.sm3 is not None and got.sm3 != expected.sm3:
        return "failed"
    return "ok" if (got.size, got.blake3, got.sha256) == (expected.size, expected.blake3, expected.sha256) else "failed"


def expected_digests(session: Session, rec: Recording) -> tuple[Fingerprint, int | None]:
    """What the stored copy must be: the digests its ``recording.verified`` entry recorded (and that
    entry's seq); the row's own only for a recording the log never recorded (the rows check names it)."""
    logged = logged_digests(session, [rec.id]).get(rec.id)
    if logged is None:
        return Fingerprint(rec.blake3, rec.sha256, rec.size, rec.sm3), None
    return Fingerprint(logged.blake3, logged.sha256, logged.size, logged.sm3), logged.seq


def adopt_sm3(session: Session, rec: Recording, sm3: str, where: str) -> None:
    """Keep the SM3 of a recording stored before SM3 was computed, read from its intact stored copy, and log
    it (``recording.sm3``: the rows check binds the row's SM3 to this entry)."""
    rec.sm3 = sm3
    audit(
        session,
        "recording.sm3",
        object_type="recording",
        object_id=rec.id,
        details={"sm3": sm3, "blake3": rec.blake3, "size": rec.size, "where": where},
    )


@dataclass
class SweepReport:
    checked: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    orphan_objects: list[str] = field(default_factory=list)
    rows_differ: list[int] = field(default_factory=list)  # recordings whose row no longer says what the log does
    sm3_added: list[int] = field(default_factory=list)  # recordings stored before SM3, given theirs by this read
    bytes_read: int = 0
    seconds: float = 0.0


def _incident(session: Session, kind: str, rec: Recording, details: dict[str, Any]) -> None:
    session.add(
        IntegrityIncident(
            kind=kind, recording_id=rec.id, transfer_id=rec.transfer_id, station_id=rec.station_id, details=details
        )
    )


def record_result(session: Session, rec_id: int, got: Fingerprint | None, report: SweepReport) -> None:
    rec = session.get(Recording, rec_id)
    if rec is None or rec.fixity_state in FIXITY_BAD:
        return
    want, seq = expected_digests(session, rec)
    if (rec.size, rec.blake3, rec.sha256) != (want.size, want.blake3, want.sha256) or (
        want.sm3 is not None and rec.sm3 != want.sm3
    ):
        report.rows_differ.append(rec.id)
        log.error("recording %s: its row's digests differ from log entry %s; checked against the log", rec.id, seq)
    state = judge(want, got)
    rec.fixity_state, rec.fixity_checked_at = state, utcnow()
    report.checked.append(rec.id)
    if state == "ok":
        if want.sm3 is None and got is not None and got.sm3 is not None:
            adopt_sm3(session, rec, got.sm3, "fixity sweep")
            report.sm3_added.append(rec.id)
        return
    expected = {"size": want.size, "blake3": want.blake3, "sha256": want.sha256, "sm3": want.sm3, "logged_in": seq}
    found = None if got is None else {"size": got.size, "blake3": got.blake3, "sha256": got.sha256, "sm3": got.sm3}
    details = {"storage_key": rec.storage_key, "expected": expected, "found": found}
    if state == "failed":
        report.failed.append(rec.id)
        _incident(session, "fixity_mismatch", rec, details)
    else:
        report.missing.append(rec.id)
        _incident(session, "fixity_missing", rec, details)
    audit(session, f"recording.fixity_{state}", object_type="recording", object_id=rec.id, details=details)
    log.error("fixity %s: recording %s (%s)", state, rec.id, rec.storage_key)


def _orphans(session: Session, store: ObjectStore, grace_s: int, report: SweepReport) -> None:
    """Objects without a record (older than the grace) and records without an object.

    The records are read before the store is listed: an upload stores its object before it commits its
    record, so every record read has its object listed. An object stored while the store was being listed
    may have had its record committed since, or be committing it now; the objects that look orphaned are
    looked up once more, after any upload still storing one has ended (``keylock``), before any is
    reported.

    Both come in the order of their keys and are walked side by side, so what is held is only what is
    reported: at 10M recordings, holding every key took gigabytes, and each disposed recording (its object
    removed on purpose) was looked up alone, every hour."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    by_key = _key_in_byte_order(session)
    records = session.execute(
        select(Recording.storage_key, Recording.id, Recording.fixity_state)
        .order_by(by_key, Recording.id)
        .execution_options(yield_per=5000)
    )
    candidates: list[str] = []
    missing: list[int] = []
    rows = _ascending(iter(records), "the records")
    rec = next(rows, None)

    def pass_records_before(key: str | None) -> None:
        """Go past the records before ``key`` (all that are left, for None): none has its object."""
        nonlocal rec
        while rec is not None and (key is None or rec[0] < key):
            if rec[2] not in FIXITY_BAD:
                missing.append(rec[1])
            rec = next(rows, None)

    for key, _size, modified in _ascending(store.iter_keys(), "the store's listing"):
        pass_records_before(key)
        if rec is not None and rec[0] == key:
            while rec is not None and rec[0] == key:
                rec = next(rows, None)
        elif modified <= cutoff:
            candidates.append(key)
    pass_records_before(None)
    keylock.settled(session, candidates)  # an upload still finishing one of them commits first
    recorded: set[str] = set()
    for i in range(0, len(candidates), 500):
        chunk = candidates[i : i + 500]
        recorded.update(session.scalars(select(Recording.storage_key).where(by_key.in_(chunk))))
    report.orphan_objects.extend(key for key in candidates if key not in recorded)
    known = {
        (i.details or {}).get("storage_key")
        for i in session.scalars(select(IntegrityIncident).where(IntegrityIncident.kind == "orphan_object"))
    }
    for key in report.orphan_objects:
        if key not in known:
            session.add(IntegrityIncident(kind="orphan_object", details={"storage_key": key}))
    for rid in missing:
        record_result(session, rid, None, report)


def _key_in_byte_order(session: Session) -> ColumnElement[str]:
    """The storage key compared byte by byte, as S3 lists keys (and the local store, ``iter_keys``): on
    PostgreSQL in the "C" collation, read from ``ix_recordings_storage_key`` (migration 0029) in that order;
    SQLite compares bytes by default."""
    if session.get_bind().dialect.name == "postgresql":
        return Recording.storage_key.collate("C")
    return Recording.storage_key.expression


def _ascending(items: Iterator[Any], what: str) -> Iterator[Any]:
    """``items`` as they come, refusing to go on if one's key (its first field) is not after the last's:
    walked side by side with keys out of order, present objects would be reported missing."""
    last = None
    for item in items:
        if last is not None and item[0] < last:
            raise RuntimeError(f"fixity: {what} is not in the order of its keys ({item[0]!r} after {last!r})")
        last = item[0]
        yield item


def due_for_check(files: int) -> Select[int, str]:
    """The ``files`` recordings checked longest ago (never checked first): one index read
    (``ix_recordings_fixity_due``), not a sort of every recording at each hourly sweep (0.3 s at 1M)."""
    return (
        select(Recording.id, Recording.storage_key)
        .where(fixity_sound())
        .order_by(Recording.fixity_checked_at.asc().nulls_first(), Recording.id)
        .limit(files)
    )


def without_sm3(files: int, ids: list[int] | None = None) -> Select[int, str]:
    """Up to ``files`` recordings with no SM3 yet (of ``ids``): from the partial index of those
    (``ix_recordings_sm3_missing``), which in service holds none once the backfill is done."""
    stmt = select(Recording.id, Recording.storage_key).where(Recording.sm3.is_(None), fixity_sound())
    if ids is not None:
        stmt = stmt.where(Recording.id.in_(ids))
    return stmt.order_by(Recording.id).limit(files)


def sweep(
    ctx: ServerContext, *, files: int | None = None, bytes_per_second: int | None = None, orphans: bool = True
) -> SweepReport:
    """Check the ``files`` least recently checked recordings; report orphans. Idempotent."""
    settings = ctx.settings
    files = settings.fixity_files_per_run if files is None else files
    rate = settings.fixity_bytes_per_second if bytes_per_second is None else bytes_per_second
    report, throttle, started = SweepReport(), Throttle(rate), time.monotonic()
    with ctx.sessionmaker() as session:
        due = session.execute(due_for_check(files)).all()
    for rec_id, key in due:
        got = read_fingerprint(ctx.store, key, throttle)  # no transaction open while reading
        report.bytes_read += got.size if got else 0
        with ctx.sessionmaker() as session:
            record_result(session, rec_id, got, report)
            session.commit()
    with ctx.sessionmaker() as session:
        if orphans:
            _orphans(session, ctx.store, settings.fixity_orphan_grace_s, report)
        report.seconds = round(time.monotonic() - started, 3)
        audit(
            session,
            "fixity.sweep",
            object_type="store",
            details={
                "checked": report.checked,
                "failed": report.failed,
                "missing": report.missing,
                "orphan_objects": report.orphan_objects[:100],
                "orphan_count": len(report.orphan_objects),
                "rows_differ": report.rows_differ,
                "bytes_read": report.bytes_read,
            },
        )
        session.commit()
    return report


def backfill_sm3(
    ctx: ServerContext, files: int | None = None, ids: list[int] | None = None, bytes_per_second: int | None = None
) -> SweepReport:
    """Give up to ``files`` recordings stored before SM3 was computed (of ``ids``, when given) their SM3: each
    is read once, checked like a fixity sweep checks it (a damaged copy is reported so, never given an SM3),
    and kept. Idempotent."""
    settings = ctx.settings
    files = settings.sm3_backfill_files_per_run if files is None else files
    rate = settings.fixity_bytes_per_second if bytes_per_second is None else bytes_per_second
    report, throttle, started = SweepReport(), Throttle(rate), time.monotonic()
    with ctx.sessionmaker() as session:
        due = session.execute(without_sm3(files, ids)).all()
    for rec_id, key in due:
        got = read_fingerprint(ctx.store, key, throttle)
        report.bytes_read += got.size if got else 0
        with ctx.sessionmaker() as session:
            record_result(session, rec_id, got, report)
            session.commit()
    report.seconds = round(time.monotonic() - started, 3)
    return report
