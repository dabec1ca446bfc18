"""Group commit for the audit log on PostgreSQL: pending entries get their place in the log in batches.

A request commits its audit entries to ``audit_pending`` with the change they record, without any
lock; right after its commit it runs ``sequence`` (so its own entries are in the log before it
answers), which takes the log head's lock once and moves every pending entry, its own and those
of the requests that committed meanwhile, into ``audit_events`` with consecutive ``seq`` numbers,
their time and their leaf hashes. Writers never wait on each other; sequencers do, briefly, and
each one's batch covers the others'. A crash between a commit and its sequencing leaves the entry
pending: the next run (any request's, or the periodic ``audit.sequence`` task) takes it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from custodia_wire.auditlog import entry_leaf_hash, make_entry
from evidence_server.audit.models import AuditEvent, AuditLogHead, AuditPending
from evidence_server.db import utcnow

log = logging.getLogger(__name__)
BATCH = 2_000
_PENDING_COLUMNS = (
    AuditPending.id,
    AuditPending.actor_type,
    AuditPending.actor_id,
    AuditPending.actor_name,
    AuditPending.action,
    AuditPending.object_type,
    AuditPending.object_id,
    AuditPending.client_addr,
    AuditPending.details,
)


def _locked_size(conn: Connection) -> int:
    """The log's size, with its head row locked until the transaction ends (made if missing)."""
    size = conn.execute(select(AuditLogHead.size).where(AuditLogHead.id == 1).with_for_update()).scalar()
    if size is None:  # a database made without migrations: start the head at what the log holds
        size = conn.execute(select(func.coalesce(func.max(AuditEvent.seq) + 1, 0))).scalar_one()
        conn.execute(insert(AuditLogHead).values(id=1, size=size))
    return int(size)


def _event(seq: int, at: Any, row: Any) -> dict[str, Any]:
    ev = {
        "seq": seq,
        "at": at,
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "actor_name": row.actor_name,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "client_addr": row.client_addr,
        "details": row.details,
    }
    e = SimpleNamespace(**ev)
    entry = make_entry(
        e.seq,
        e.at,
        e.actor_type,
        e.actor_id,
        e.actor_name,
        e.action,
        e.object_type,
        e.object_id,
        e.client_addr,
        e.details,
    )
    ev["leaf_hash"] = entry_leaf_hash(entry).hex()
    return ev


#: PostgreSQL, in one statement: take the oldest pending entries out of the queue and move the log head
#: past them. The head's row lock (held to the commit) orders concurrent sequencers; one that waited
#: finds the entries gone (READ COMMITTED re-checks them) and moves the head by nothing.
_TAKE = text(
    """
    WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true)),
    moved AS (
        DELETE FROM audit_pending
        WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT :batch)
        RETURNING id, actor_type, actor_id, actor_name, action, object_type, object_id, client_addr, details
    ),
    head AS (
        UPDATE audit_log_head SET size = size + (SELECT count(*) FROM moved) WHERE id = 1 RETURNING size
    )
    SELECT moved.*, head.size AS new_size FROM head, cfg LEFT JOIN moved ON true ORDER BY moved.id
    """
).columns(details=JSON)


def _take_pg(conn: Connection) -> tuple[int, list[Any]] | None:
    """(first seq, rows) of the entries this transaction moves; the head row stays locked until commit.

    ``synchronous_commit`` is off for this transaction: should its commit be lost in a crash, it is
    lost whole (the entries are pending again and placed again), and a checkpoint's synchronous
    commit flushes the WAL up to it, so nothing a checkpoint signs can be lost.
    """
    result = conn.execute(_TAKE, {"batch": BATCH}).all()
    if not result:  # no head row yet (a database made without migrations)
        return None
    rows = [r for r in result if r.id is not None]
    return (int(rows[0].new_size) - len(rows), rows) if rows else (0, [])


def _take(conn: Connection) -> tuple[int, list[Any]]:
    """The same, portably (SQLite, or a PostgreSQL without the head row yet)."""
    size = _locked_size(conn)
    rows = conn.execute(select(*_PENDING_COLUMNS).order_by(AuditPending.id).limit(BATCH)).all()
    if rows:
        conn.execute(delete(AuditPending).where(AuditPending.id.in_([row.id for row in rows])))
        conn.execute(update(AuditLogHead).where(AuditLogHead.id == 1).values(size=size + len(rows)))
    return size, list(rows)


def _move(conn: Connection) -> int:
    """Move one batch (locking the log head until this transaction ends); how many were moved."""
    taken = _take_pg(conn) if conn.dialect.name == "postgresql" else None
    first, rows = taken if taken is not None else _take(conn)
    if rows:
        at = utcnow()
        conn.execute(insert(AuditEvent), [_event(first + i, at, row) for i, row in enumerate(rows)])
    return len(rows)


def sequence(engine: Engine) -> int:
    """Move every committed pending entry into the log, oldest first; return how many were moved."""
    moved = 0
    while True:
        with engine.begin() as conn:
            batch = _move(conn)
        moved += batch
        if batch < BATCH:
            return moved


class Sequencer:
    """One thread per engine that runs ``sequence`` whenever asked, each run covering every request
    that asked before it started: writers never sequence (nor lock) themselves, they wait for a run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cond = threading.Condition()
        self._asked = self._done = 0
        self._thread: threading.Thread | None = None

    def place(self, timeout: float = 10.0) -> bool:
        """Wait until a run that started after this call has finished: entries committed before the
        call are in the log. False on timeout (they stay pending, for the next run)."""
        with self._cond:
            self._asked += 1
            ticket = self._asked
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="custodia-audit-sequencer", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= ticket, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._asked > self._done, timeout=60.0):
                    self._thread = None  # idle: a later place() starts another
                    return
                target = self._asked
            try:
                sequence(self.engine)
            except Exception:  # noqa: BLE001  (the entries stay pending: the next run, or audit.sequence)
                log.exception("could not place pending audit entries")
            with self._cond:
                self._done = target
                self._cond.notify_all()


_SEQUENCERS: weakref.WeakKeyDictionary[Engine, Sequencer] = weakref.WeakKeyDictionary()
_SEQUENCERS_LOCK = threading.Lock()


def sequencer_for(engine: Engine) -> Sequencer:
    with _SEQUENCERS_LOCK:
        found = _SEQUENCERS.get(engine)
        if found is None:
            found = _SEQUENCERS[engine] = Sequencer(engine)
        return found
