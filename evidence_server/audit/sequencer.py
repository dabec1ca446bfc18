"""Group commit for the audit log on PostgreSQL: pending entries get their place in the log in batches.

A request commits its audit entries to ``audit_pending`` with the change they record, without any
lock, and answers: the entry is durable from its commit. Right after the commit it nudges its
process's sequencer thread, which takes the log head's lock once per run and moves every pending
entry, its own and those of every process's requests that committed meanwhile, into
``audit_events`` with consecutive ``seq`` numbers, their time and their leaf hashes. Writers never
wait on each other nor on the log.

Readers never see a log that lags a commit: every statement that reads the log (``audit_events``
or ``audit_log_head``) first places whatever is pending (one indexed look on the reader's own connection
when nothing is), so whoever reads, in whichever process, finds every entry committed before the read
in its place: an export's entry before the handover that checks it, a view before the audit page.
A crash between a commit and its placement leaves the entry pending: the next read, run or the
periodic ``audit.sequence`` task places it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from sqlalchemy import JSON, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from custodia_wire.auditlog import entry_leaf_hash, make_entry
from evidence_server.audit.models import AuditEvent, AuditLogHead, AuditPending
from evidence_server.db import UTCDateTime, utcnow

log = logging.getLogger(__name__)
BATCH = 2_000
#: how long a run waits for more commits to share it (nobody waits on a run: readers place for themselves)
COALESCE_S = 0.005
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
    AuditPending.at,
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
    ev["leaf_hash"] = entry_leaf_hash(make_entry(**ev)).hex()
    return ev


def _times(conn: Connection, first: int, rows: list[Any]) -> list[Any]:
    """Each entry's time: when its request recorded it (an entry queued by an older server: now), never
    before the entry ahead of it, so that the log's times run forward with its order: a request that
    committed after a later one keeps its place and takes the later one's time."""
    now = utcnow()
    last = conn.scalar(select(AuditEvent.at).where(AuditEvent.seq == first - 1)) if first > 0 else None
    out = []
    for row in rows:
        at = row.at or now
        last = at if last is None or at > last else last
        out.append(last)
    return out


#: PostgreSQL, in one statement: take the oldest pending entries out of the queue and move the log head
#: past them. The head's row lock (held to the commit) orders concurrent sequencers; one that waited
#: finds the entries gone (READ COMMITTED re-checks them) and moves the head by nothing. ``newest``: the
#: newest entry pending when the statement began (its snapshot does not see the statement's own delete).
_TAKE = text(
    """
    WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true)),
    moved AS (
        DELETE FROM audit_pending
        WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT :batch)
        RETURNING id, actor_type, actor_id, actor_name, action, object_type, object_id, client_addr, details, at
    ),
    head AS (
        UPDATE audit_log_head SET size = size + (SELECT count(*) FROM moved) WHERE id = 1 RETURNING size
    )
    SELECT moved.*, head.size AS new_size, (SELECT max(id) FROM audit_pending) AS newest
    FROM head, cfg LEFT JOIN moved ON true ORDER BY moved.id
    """
).columns(details=JSON, at=UTCDateTime(timezone=True))


def _take_pg(conn: Connection) -> tuple[int, list[Any], int | None] | None:
    """(first seq, rows, newest pending id) of the entries this transaction moves; the head row stays
    locked until commit.

    ``synchronous_commit`` is off for this transaction: should its commit be lost in a crash, it is
    lost whole (the entries are pending again and placed again), and a checkpoint's synchronous
    commit flushes the WAL up to it, so nothing a checkpoint signs can be lost.
    """
    result = conn.execute(_TAKE, {"batch": BATCH}).all()
    if not result:  # no head row yet (a database made without migrations)
        return None
    rows = [r for r in result if r.id is not None]
    return (int(rows[0].new_size) - len(rows) if rows else 0), rows, result[0].newest


def _take(conn: Connection) -> tuple[int, list[Any], int | None]:
    """The same, portably (SQLite, or a PostgreSQL without the head row yet)."""
    size = _locked_size(conn)
    newest = conn.scalar(select(func.max(AuditPending.id)))
    rows = conn.execute(select(*_PENDING_COLUMNS).order_by(AuditPending.id).limit(BATCH)).all()
    if rows:
        conn.execute(delete(AuditPending).where(AuditPending.id.in_([row.id for row in rows])))
        conn.execute(update(AuditLogHead).where(AuditLogHead.id == 1).values(size=size + len(rows)))
    return size, list(rows), newest


def _move(conn: Connection) -> tuple[int, int | None, int | None]:
    """Move one batch (locking the log head until this transaction ends): how many were moved, the last
    moved id, and the newest entry that was pending when the batch began (None: nothing was)."""
    taken = _take_pg(conn) if conn.dialect.name == "postgresql" else None
    first, rows, newest = taken if taken is not None else _take(conn)
    if rows:
        times = _times(conn, first, rows)
        conn.execute(insert(AuditEvent), [_event(first + i, times[i], row) for i, row in enumerate(rows)])
    return len(rows), (rows[-1].id if rows else None), newest


#: the execution option that marks the sequencer's own connections (their reads must not place first)
SEQUENCING = "custodia_sequencing"
LOG_TABLES = frozenset({"audit_events", "audit_log_head"})
_PENDING_UPTO = text("SELECT EXISTS (SELECT 1 FROM audit_pending WHERE id <= :upto)")
_ANY_PENDING = "SELECT EXISTS (SELECT 1 FROM audit_pending)"


def sequence(engine: Engine) -> int:
    """Move every entry committed before this call into the log, oldest first; how many this call moved.

    A batch that finds its entries taken by another process's run moves fewer of them, or none, while
    that run may still have batches to go: so unless a batch reached the newest entry that was pending
    when the first began, this looks again, until none of those is left (and no further: writers that
    keep committing do not keep it running)."""
    moved = 0
    upto: int | None = None
    with engine.connect() as conn:
        conn.execution_options(**{SEQUENCING: True})
        while True:
            with conn.begin():
                batch, last, newest = _move(conn)
            moved += batch
            upto = newest if upto is None else upto
            if upto is None or (last is not None and last >= upto):
                return moved
            left = conn.scalar(_PENDING_UPTO, {"upto": upto})  # a fresh snapshot: runs we waited for are in
            conn.commit()
            if not left:
                return moved


def _reads_log(sql: str) -> bool:
    """A query (SELECT or WITH) naming the log's tables: a look at the SQL text, microseconds."""
    return sql.lstrip(" \t\r\n(")[:6].upper().startswith(("SELECT", "WITH")) and any(t in sql for t in LOG_TABLES)


@event.listens_for(Engine, "before_cursor_execute")
def _place_before_reading_the_log(
    conn: Connection, cursor: Any, sql: str, _params: Any, _context: Any, _many: bool
) -> None:
    """A read of the log, on PostgreSQL (where entries commit pending), finds every committed entry placed.

    Whether anything is pending is asked on the reader's own connection, in the reader's transaction (no
    second connection); only then does ``sequence`` take a connection of its own to place it."""
    if (
        GROUP_COMMIT
        and conn.dialect.name == "postgresql"
        and _reads_log(sql)
        and not conn.get_execution_options().get(SEQUENCING)
    ):
        with cursor.connection.cursor() as look:  # (a failure here is the read's own connection failing)
            if not look.execute(_ANY_PENDING).fetchone()[0]:
                return
        try:
            sequence(conn.engine)
        except Exception:  # noqa: BLE001  (no connection to spare, a lost server: the read goes on)
            log.warning("could not place pending audit entries before a read of the log", exc_info=True)


#: Group commit where the database lets writers work in parallel (PostgreSQL); tests may switch it off.
GROUP_COMMIT = True


class Sequencer:
    """One thread per engine that runs ``sequence`` whenever asked, each run covering every request
    that asked before it started: writers never sequence (nor lock) themselves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cond = threading.Condition()
        self._asked = self._done = 0
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        """Ask for a run (which covers every entry committed before it starts)."""
        with self._cond:
            self._asked += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="custodia-audit-sequencer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def behind(self) -> bool:
        with self._cond:
            return self._asked > self._done

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._asked > self._done, timeout=60.0):
                    self._thread = None  # idle: a later nudge() starts another
                    return
            time.sleep(COALESCE_S)  # let the commits of the next few milliseconds share this run
            with self._cond:
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


def drain(engine: Engine) -> None:
    """Before an engine closes: place what this process nudged for and no run placed yet."""
    found = _SEQUENCERS.get(engine)
    if found is not None and found.behind():
        try:
            sequence(engine)
        except Exception:  # noqa: BLE001  (they stay pending: the next read, run or audit.sequence)
            log.exception("could not place pending audit entries at close")


def sequencer_for(engine: Engine) -> Sequencer:
    with _SEQUENCERS_LOCK:
        found = _SEQUENCERS.get(engine)
        if found is None:
            found = _SEQUENCERS[engine] = Sequencer(engine)
        return found
