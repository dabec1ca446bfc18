"""The audit trail: who did what, when, from where, to which object — as an append-only Merkle log.

Each event is a leaf of an RFC 9162 Merkle tree: ``seq`` is its leaf index (from 0, no gaps) and
``leaf_hash`` the hash of its canonical JSON. Signed checkpoints commit to the tree at a size.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # leaf index in the Merkle log
    leaf_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256(0x00 || canonical JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # user | station | system
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuditLogHead(Base):
    """One row: the log's size. Appenders lock it, so sequence numbers are handed out one at a time."""

    __tablename__ = "audit_log_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class AuditCheckpoint(Base):
    """A signed tree head: the log had ``tree_size`` entries with this root at ``issued_at``."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(200))
    tree_size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)  # the C2SP signed note, as exported
    # hex roots of the perfect subtrees at tree_size (largest first, comma-separated): the next
    # checkpoint starts from them, so signing costs only the entries appended since
    frontier: Mapped[str] = mapped_column(Text)
    # the leaf hashes this checkpoint added (entries of the previous checkpoint's size up to this one's),
    # 32 bytes each: authenticated by the signed root, they let the full check name a rewritten entry
    leaves: Mapped[bytes | None] = mapped_column(LargeBinary)
    tsa_url: Mapped[str | None] = mapped_column(String(500))
    tsa_token: Mapped[bytes | None] = mapped_column(LargeBinary)  # RFC 3161 TimeStampToken (DER)
    tsa_time: Mapped[datetime | None]


class AuditTile(Base):
    """A full tile of the log's Merkle tree, in the manner of C2SP tlog-tiles: 256 node hashes.

    A tile of level ``L`` and index ``i`` holds the hashes of the nodes of height ``8L`` numbered
    ``256i`` to ``256i + 255`` (level 0: leaf hashes), and ``root`` is the node of height ``8(L+1)``
    above them. Only full tiles are kept; they never change, so any proof reads O(log n) hashes:
    a few tiles and at most 255 hashes of the tree's right edge. Derived from the entries (and
    checked against them by ``custodia audit verify``): never a source of truth of their own.
    """

    __tablename__ = "audit_tiles"
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)  # 256 × 32 bytes, in order
    root: Mapped[bytes] = mapped_column(LargeBinary)  # 32 bytes


class AuditPending(Base):
    """An entry committed with the change it records, waiting for its place in the log (PostgreSQL).

    Writers insert here without taking any lock; the sequencer (``audit.sequencer``) moves pending
    entries into ``audit_events`` in commit order, many at a time, under the log head's lock: group
    commit. A crash between the two leaves the entry here, and the next run takes it.
    """

    __tablename__ = "audit_pending"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime | None]  # when the request recorded it (None: queued before this column existed)


class AuditTally(Base):
    """Repeated identical failures (same action, client and subject) in one time window, counted.

    The first of them is an audit entry in full; the rest only raise ``count`` here, and the count
    becomes one ``audit.repeated`` entry when the window closes (``audit.tally.close_windows``). So
    a flood of bad logins or enrolment codes is recorded without making the log grow with it.
    """

    __tablename__ = "audit_tallies"
    __table_args__ = (UniqueConstraint("action", "client_addr", "subject", "window_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    client_addr: Mapped[str] = mapped_column(String(64))  # "*": every client beyond the window's cap
    subject: Mapped[str] = mapped_column(String(200))  # e.g. the username tried; "*" beyond the cap
    window_start: Mapped[datetime] = mapped_column(index=True)
    count: Mapped[int] = mapped_column(BigInteger)
