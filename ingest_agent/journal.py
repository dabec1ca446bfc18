"""The station's durable journal: what was docked, copied, uploaded, receipted and wiped.

SQLite in WAL mode with ``synchronous=FULL``; every state change is its own committed
transaction, so after a crash or power cut the journal says exactly how far each file got.
It is the source of truth for recovery: nothing leaves the spool or the device unless the
journal holds a verified receipt for it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custodia_wire.documents import utc_iso

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS docks (
    transfer_id   TEXT PRIMARY KEY,
    root          TEXT NOT NULL,
    device_serial TEXT NOT NULL,
    payload       TEXT NOT NULL,           -- JSON: the POST /transfers body (device, officer, status, index)
    docked_at     TEXT NOT NULL,
    registered_at TEXT,                    -- the server accepted the transfer and its index
    state         TEXT NOT NULL,
    receipt       TEXT,                    -- JSON: the signed custodia.receipt/1, verified
    missing       TEXT,                    -- JSON: paths the server said it lacks at completion
    error         TEXT,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docks_by_state ON docks (state);
CREATE INDEX IF NOT EXISTS docks_by_serial ON docks (device_serial);

CREATE TABLE IF NOT EXISTS files (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id   TEXT NOT NULL REFERENCES docks (transfer_id),
    path          TEXT NOT NULL,           -- device path, relative POSIX
    size          INTEGER NOT NULL,
    mtime         TEXT NOT NULL,           -- ISO 8601 UTC, as listed at docking
    state         TEXT NOT NULL,
    blake3        TEXT,
    sha256        TEXT,
    copied_at     TEXT,
    spool_path    TEXT,                    -- NULL when no spool copy exists (any more)
    upload_url    TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    verified      INTEGER NOT NULL DEFAULT 0,
    recording_id  TEXT,
    reason        TEXT,
    retryable     INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    UNIQUE (transfer_id, path)
);
CREATE INDEX IF NOT EXISTS files_by_state ON files (state);

-- which docking of which volume a transfer read (ingest_agent.dockings): a station that restarts
-- does not take a recorder still in its dock for a new docking
CREATE TABLE IF NOT EXISTS volumes (
    transfer_id   TEXT PRIMARY KEY REFERENCES docks (transfer_id),
    root          TEXT NOT NULL,
    volume        TEXT NOT NULL,           -- ingest_agent.dockings.volume_identity
    undocked_at   TEXT                     -- when the station saw the volume go away
);
CREATE INDEX IF NOT EXISTS volumes_by_root ON volumes (root);
"""


class TransferState:
    DOCKED = "docked"  # identity and index journaled, server not told yet
    REGISTERED = "registered"  # the server accepted the transfer
    COPYING = "copying"
    UPLOADING = "uploading"
    COMPLETING = "completing"
    RECEIPTED = "receipted"  # a verified receipt is stored
    DONE = "done"  # nothing left to do for this docking
    INTERRUPTED = "interrupted"  # the device went away mid-copy; what was copied still goes up
    WAITING = "waiting"  # blocked for now (spool full, server unreachable); retried later
    FAILED = "failed"

    #: Nothing more to do: all that was copied is receipted (or failed for good).
    FINAL = frozenset({DONE, FAILED, INTERRUPTED})


class FileState:
    PENDING = "pending"  # on the device, not copied yet
    HELD = "held"  # the server already holds it verified: not copied again
    COPIED = "copied"  # fingerprinted copy in the spool
    UPLOADED = "uploaded"  # the server has every byte (and verified it, if it said so)
    RECEIPTED = "receipted"  # confirmed by the signed receipt
    WIPED = "wiped"  # deleted from the device after the receipt
    FAILED = "failed"


#: The only moves a file may make. Anything else is a bug and raises JournalError.
TRANSITIONS: dict[str, frozenset[str]] = {
    FileState.PENDING: frozenset({FileState.COPIED, FileState.HELD, FileState.FAILED}),
    FileState.FAILED: frozenset({FileState.PENDING, FileState.COPIED, FileState.FAILED}),
    # a held file, hashed on the device for a wipe, is receipted; one whose content differs
    # from what the server holds (same path and size) goes back to be copied
    FileState.HELD: frozenset({FileState.RECEIPTED, FileState.PENDING}),
    FileState.COPIED: frozenset({FileState.UPLOADED, FileState.RECEIPTED, FileState.FAILED}),
    FileState.UPLOADED: frozenset({FileState.RECEIPTED, FileState.COPIED, FileState.FAILED}),
    FileState.RECEIPTED: frozenset({FileState.WIPED}),
    FileState.WIPED: frozenset(),
}


class JournalError(RuntimeError):
    """An impossible state change or an unknown record."""


def now_iso() -> str:
    return utc_iso(datetime.now(UTC))


@dataclass(frozen=True)
class TransferRecord:
    transfer_id: str
    root: str
    device_serial: str
    payload: dict[str, Any]
    docked_at: str
    registered_at: str | None
    state: str
    receipt: dict[str, Any] | None
    missing: list[str] | None
    error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TransferRecord:
        return cls(
            transfer_id=row["transfer_id"],
            root=row["root"],
            device_serial=row["device_serial"],
            payload=json.loads(row["payload"]),
            docked_at=row["docked_at"],
            registered_at=row["registered_at"],
            state=row["state"],
            receipt=json.loads(row["receipt"]) if row["receipt"] else None,
            missing=json.loads(row["missing"]) if row["missing"] else None,
            error=row["error"],
        )


@dataclass(frozen=True)
class FileRecord:
    id: int
    transfer_id: str
    path: str
    size: int
    mtime: str
    state: str
    blake3: str | None
    sha256: str | None
    copied_at: str | None
    spool_path: str | None
    upload_url: str | None
    attempts: int
    verified: bool
    recording_id: str | None
    reason: str | None
    retryable: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> FileRecord:
        data = {k: row[k] for k in row.keys() if k != "updated_at"}  # noqa: SIM118 (sqlite3.Row)
        data["verified"] = bool(data["verified"])
        data["retryable"] = bool(data["retryable"])
        return cls(**data)


class Journal:
    """Thread-safe access to the journal; one instance shared by all dock workers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript("BEGIN IMMEDIATE;" + SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; rolled back if the body raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- docks ----------------------------------------------------------------------------

    def open_transfer(self, root: str, payload: dict[str, Any]) -> TransferRecord:
        """Record one docking and its whole file index, atomically, before anything is copied.

        ``payload`` is the ``POST /transfers`` body; it is kept so that the transfer can be
        registered (again, idempotently) after a restart.
        """
        ts = now_iso()
        transfer_id = payload["transfer_id"]
        with self._tx() as db:
            db.execute(
                "INSERT INTO docks (transfer_id, root, device_serial, payload, docked_at, state, updated_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    transfer_id,
                    root,
                    payload["device"]["serial"],
                    json.dumps(payload, ensure_ascii=False),
                    payload["docked_at"],
                    TransferState.DOCKED,
                    ts,
                ),
            )
            db.executemany(
                "INSERT INTO files (transfer_id, path, size, mtime, state, updated_at) VALUES (?,?,?,?,?,?)",
                [(transfer_id, f["path"], f["size"], f["mtime"], FileState.PENDING, ts) for f in payload["index"]],
            )
        return self.transfer(transfer_id)

    def note_volume(self, transfer_id: str, root: str, volume: str) -> None:
        """Which docking of a volume ``transfer_id`` read."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO volumes (transfer_id, root, volume) VALUES (?,?,?)", (transfer_id, root, volume)
            )

    def note_undocked(self, root: str) -> None:
        """The volume at ``root`` went away: whatever appears there next is a new docking."""
        with self._tx() as db:
            db.execute("UPDATE volumes SET undocked_at=? WHERE root=? AND undocked_at IS NULL", (now_iso(), root))

    def last_docking(self, root: str, volume: str) -> TransferRecord | None:
        """The newest transfer of this very docking of the volume at ``root``, if the station never saw it go."""
        with self._lock:
            row = self._db.execute(
                "SELECT d.* FROM docks d JOIN volumes v ON v.transfer_id = d.transfer_id"
                " WHERE v.root=? AND v.volume=? AND v.undocked_at IS NULL ORDER BY d.docked_at DESC LIMIT 1",
                (root, volume),
            ).fetchone()
        return TransferRecord.from_row(row) if row is not None else None

    def file_states(self, transfer_id: str) -> dict[tuple[str, int, str], str]:
        """(path, size, mtime) -> state, for every file a docking listed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path, size, mtime, state FROM files WHERE transfer_id=?", (transfer_id,)
            ).fetchall()
        return {(r["path"], r["size"], r["mtime"]): r["state"] for r in rows}

    def transfer(self, transfer_id: str) -> TransferRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM docks WHERE transfer_id=?", (transfer_id,)).fetchone()
        if row is None:
            raise JournalError(f"no docking with transfer id {transfer_id}")
        return TransferRecord.from_row(row)

    def transfers(self, *, unfinished: bool = False) -> list[TransferRecord]:
        sql = "SELECT * FROM docks"
        if unfinished:
            sql += " WHERE state NOT IN ({})".format(",".join("?" * len(TransferState.FINAL)))
        with self._lock:
            rows = self._db.execute(
                sql + " ORDER BY docked_at", tuple(TransferState.FINAL) if unfinished else ()
            ).fetchall()
        return [TransferRecord.from_row(r) for r in rows]

    def set_transfer_state(self, transfer_id: str, state: str, error: str | None = None) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE docks SET state=?, error=?, updated_at=? WHERE transfer_id=?",
                (state, error, now_iso(), transfer_id),
            )
            if cur.rowcount != 1:
                raise JournalError(f"no docking with transfer id {transfer_id}")

    def mark_registered(self, transfer_id: str, already_held: Iterable[dict[str, Any]]) -> list[int]:
        """The server accepted the transfer; files it already holds move to ``held``."""
        held_ids: list[int] = []
        ts = now_iso()
        with self._tx() as db:
            db.execute(
                "UPDATE docks SET registered_at=COALESCE(registered_at, ?), updated_at=? WHERE transfer_id=?",
                (ts, ts, transfer_id),
            )
            for item in already_held:
                row = db.execute(
                    "SELECT * FROM files WHERE transfer_id=? AND path=? AND size=?",
                    (transfer_id, item["path"], item["size"]),
                ).fetchone()
                if row is None or row["state"] != FileState.PENDING:
                    continue  # only files not copied yet are skipped; a copy in hand still goes up
                db.execute(
                    "UPDATE files SET state=?, blake3=?, recording_id=?, verified=1, updated_at=? WHERE id=?",
                    (FileState.HELD, item.get("blake3"), item.get("recording_id"), ts, row["id"]),
                )
                held_ids.append(row["id"])
        return held_ids

    def store_receipt(
        self, transfer_id: str, receipt: dict[str, Any], confirmed: dict[str, dict[str, Any]], missing: list[str]
    ) -> list[int]:
        """Keep a verified receipt and move every file it confirms to ``receipted``, in one transaction.

        A file counts as confirmed only when path, size, BLAKE3 and SHA-256 all match what this
        station computed while copying it.
        """
        ts = now_iso()
        receipted: list[int] = []
        with self._tx() as db:
            db.execute(
                "UPDATE docks SET receipt=?, missing=?, state=?, error=NULL, updated_at=? WHERE transfer_id=?",
                (
                    json.dumps(receipt, ensure_ascii=False),
                    json.dumps(missing, ensure_ascii=False),
                    TransferState.RECEIPTED,
                    ts,
                    transfer_id,
                ),
            )
            rows = db.execute(
                "SELECT * FROM files WHERE transfer_id=? AND state IN (?,?,?) AND sha256 IS NOT NULL",
                (transfer_id, FileState.COPIED, FileState.UPLOADED, FileState.HELD),
            ).fetchall()
            for row in rows:
                item = confirmed.get(row["path"])
                if item is None or not _receipt_matches(row, item):
                    continue
                db.execute(
                    "UPDATE files SET state=?, verified=1, recording_id=COALESCE(?, recording_id),"
                    " reason=NULL, updated_at=? WHERE id=?",
                    (FileState.RECEIPTED, item.get("recording_id"), ts, row["id"]),
                )
                receipted.append(row["id"])
        return receipted

    # --- files ----------------------------------------------------------------------------

    def file(self, file_id: int) -> FileRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()
        if row is None:
            raise JournalError(f"no file with journal id {file_id}")
        return FileRecord.from_row(row)

    def files(self, transfer_id: str, *states: str) -> list[FileRecord]:
        sql = "SELECT * FROM files WHERE transfer_id=?"
        args: list[Any] = [transfer_id]
        if states:
            sql += " AND state IN ({})".format(",".join("?" * len(states)))
            args += states
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY path", args).fetchall()
        return [FileRecord.from_row(r) for r in rows]

    def move(self, file_id: int, new_state: str, **fields: Any) -> FileRecord:
        """Move one file to ``new_state`` (checked against TRANSITIONS), setting ``fields`` too."""
        allowed = {
            "blake3",
            "sha256",
            "copied_at",
            "spool_path",
            "upload_url",
            "verified",
            "recording_id",
            "reason",
            "retryable",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise JournalError(f"not a file field: {sorted(unknown)}")
        with self._tx() as db:
            row = db.execute("SELECT state FROM files WHERE id=?", (file_id,)).fetchone()
            if row is None:
                raise JournalError(f"no file with journal id {file_id}")
            if new_state not in TRANSITIONS[row["state"]]:
                raise JournalError(f"file {file_id}: {row['state']} -> {new_state} is not allowed")
            self._update(db, file_id, state=new_state, **fields)
        return self.file(file_id)

    def update(self, file_id: int, **fields: Any) -> None:
        """Change bookkeeping fields (upload URL, spool path, attempts) without a state change."""
        allowed = {"spool_path", "upload_url", "attempts", "reason", "size", "mtime", "blake3", "sha256"}
        if set(fields) - allowed:
            raise JournalError(f"not a bookkeeping field: {sorted(set(fields) - allowed)}")
        with self._tx() as db:
            self._update(db, file_id, **fields)

    def count_attempt(self, file_id: int) -> int:
        with self._tx() as db:
            db.execute("UPDATE files SET attempts=attempts+1, updated_at=? WHERE id=?", (now_iso(), file_id))
            row = db.execute("SELECT attempts FROM files WHERE id=?", (file_id,)).fetchone()
        return int(row["attempts"])

    def fail(self, file_id: int, reason: str, *, retryable: bool) -> FileRecord:
        return self.move(file_id, FileState.FAILED, reason=reason, retryable=int(retryable))

    @staticmethod
    def _update(db: sqlite3.Connection, file_id: int, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        db.execute(
            f"UPDATE files SET {cols}, updated_at=? WHERE id=?",  # noqa: S608 (names whitelisted)
            (*fields.values(), now_iso(), file_id),
        )


def _receipt_matches(row: sqlite3.Row, item: dict[str, Any]) -> bool:
    return bool(
        item.get("size") == row["size"] and item.get("blake3") == row["blake3"] and item.get("sha256") == row["sha256"]
    )
