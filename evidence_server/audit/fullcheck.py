"""The full check of the audit log: every leaf recomputed from its row, every signed root recomputed
from the leaves, and every bad entry named as exactly as the signed data allows.

Three kinds of signed data name an entry:

- the row's own stored leaf hash: a row edited in place no longer matches it (exact);
- the leaf copy a checkpoint keeps of the entries it added, authenticated because it hashes up to
  the signed root: a row rewritten *together with* its stored leaf hash differs from it (exact);
- the checkpoint's tree state (the roots of its perfect subtrees), authenticated the same way: for a
  checkpoint signed before leaf copies were kept, the damage is narrowed to the one subtree whose
  root differs (a range, said as such, never passed off as one entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import auditlog, merkle
from custodia_wire.auditlog import LogError
from evidence_server.audit.log import ENTRY_COLUMNS, log_size, stream_rows
from evidence_server.audit.models import AuditCheckpoint, AuditEvent

#: the server's key, or its keys (Ed25519, and SM2 once configured)
NoteKeys = auditlog.NoteKey | Sequence[auditlog.NoteKey]

H = merkle.HASH_SIZE


@dataclass(frozen=True)
class Verified:
    """A signed checkpoint the log was last found to match, with its tree state: where the next
    incremental check starts. It proves nothing by itself: it is believed only where a checkpoint
    whose signature verifies has the same size and root, and its subtrees fold to that root."""

    size: int
    root: bytes
    subtrees: tuple[bytes, ...]

    def frontier(self) -> merkle.Frontier | None:
        try:
            f = merkle.Frontier.restore(self.size, self.subtrees)
        except ValueError:
            return None
        return f if f.root() == self.root else None


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    since: int = 0  # entries below this were verified by an earlier check and not read again
    verified: Verified | None = None  # the largest checkpoint the log matched
    problems: list[str] = field(default_factory=list)
    exact: list[int] = field(default_factory=list)  # entries known to be bad
    ranges: list[tuple[int, int]] = field(default_factory=list)  # (first, last) ranges known to hold a bad entry

    @property
    def ok(self) -> bool:
        return not self.problems

    def first_bad(self) -> tuple[int, int] | None:
        """(first, last) of the earliest damage: one entry when first == last, else a range known to hold one.

        A range that holds an entry already named exactly is explained by it and is not counted.
        """
        unexplained = [r for r in self.ranges if not any(r[0] <= e <= r[1] for e in self.exact)]
        spots = [(e, e) for e in self.exact] + unexplained
        return min(spots) if spots else None

    @property
    def first_bad_seq(self) -> int | None:
        """The first entry known bad, or the start of the first range known to hold one."""
        spot = self.first_bad()
        return None if spot is None else spot[0]

    def describe_first_bad(self) -> str:
        spot = self.first_bad()
        if spot is None:
            return "none"
        first, last = spot
        if first == last:
            return str(first)
        return (
            f"one of {first}..{last} (the signed checkpoint covering them keeps no copy of their leaves, "
            "so the log cannot say which)"
        )

    def bad(self, seq: int | None, message: str) -> None:
        self.problems.append(message)
        if seq is not None:
            self.exact.append(seq)

    def bad_range(self, first: int, last: int, message: str) -> None:
        self.problems.append(message)
        self.ranges.append((first, last))


@dataclass
class _Signed:
    """One checkpoint after its signature was checked, with whatever of its stored state is authentic."""

    size: int
    root: bytes
    subtrees: list[bytes] | None = None  # its tree state, if it gives the signed root
    start: int = 0  # the first entry of ``leaves``
    leaves: bytes | None = None  # the leaf copy, if it hashes (from the previous tree state) to the signed root

    def copy_of(self, seq: int) -> bytes | None:
        if self.leaves is None or not self.start <= seq < self.size:
            return None
        at = (seq - self.start) * H
        return self.leaves[at : at + H]


def _subtree_sizes(size: int) -> list[int]:
    """The sizes of the perfect subtrees of a tree of ``size`` leaves, largest first."""
    return [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]


def _tree_state(cp: AuditCheckpoint, root: bytes) -> list[bytes] | None:
    try:
        subtrees = [bytes.fromhex(h) for h in cp.frontier.split(",") if h]
        restored = merkle.Frontier.restore(cp.tree_size, subtrees)
    except ValueError:
        return None
    return subtrees if restored.root() == root else None


def _signed_checkpoints(
    session: Session, public_key: NoteKeys, origin: str | None, report: VerifyReport, start: merkle.Frontier
) -> list[_Signed]:
    """The checkpoints from ``start`` on whose signature verifies, in size order, with their authentic
    stored state."""
    out: list[_Signed] = []
    stmt = select(AuditCheckpoint).where(AuditCheckpoint.tree_size >= start.size).order_by(AuditCheckpoint.tree_size)
    for cp in session.scalars(stmt):
        try:
            signed = auditlog.verify_note(cp.note, public_key, origin)
        except LogError as exc:
            report.bad(None, f"checkpoint at size {cp.tree_size}: {exc}")
            continue
        if (signed.tree_size, signed.root_hash.hex()) != (cp.tree_size, cp.root_hash):
            report.bad(None, f"checkpoint at size {cp.tree_size}: its columns differ from its signed note")
        item = _Signed(signed.tree_size, signed.root_hash, _tree_state(cp, signed.root_hash))
        item.leaves = cp.leaves if signed.tree_size == cp.tree_size else None
        out.append(item)
    report.checkpoints = len(out)
    _authenticate_leaf_copies(out, report, start)
    return out


def _authenticate_leaf_copies(checkpoints: list[_Signed], report: VerifyReport, start: merkle.Frontier) -> None:
    """Keep a checkpoint's leaf copy only if, appended to the previous authentic tree state, it gives
    the signed root; a copy that does not was altered, and is not used to name anything."""
    before: merkle.Frontier | None = merkle.Frontier.restore(start.size, start.subtrees)
    for cp in checkpoints:
        copy, cp.leaves = cp.leaves, None
        if cp.size <= start.size:  # the checkpoint an incremental check starts from: checked before
            continue
        if copy is not None and before is not None and len(copy) == (cp.size - before.size) * H:
            trial = merkle.Frontier.restore(before.size, before.subtrees)
            trial.extend(copy[i : i + H] for i in range(0, len(copy), H))
            if trial.root() == cp.root:
                cp.start, cp.leaves = before.size, copy
        if copy is not None and cp.leaves is None and before is not None:
            report.problems.append(
                f"checkpoint at size {cp.size}: its copy of the leaves it signed was altered (not used)"
            )
        before = merkle.Frontier.restore(cp.size, cp.subtrees) if cp.subtrees is not None else None


def _narrow(cp: _Signed, frontier: merkle.Frontier, last_good: int) -> tuple[int, int]:
    """The smallest signed subtree that differs from the recomputed tree, else everything since the last
    checkpoint that matched."""
    if cp.subtrees is not None and len(cp.subtrees) == len(frontier.subtrees):
        lo = 0
        for size, signed, ours in zip(_subtree_sizes(cp.size), cp.subtrees, frontier.subtrees, strict=True):
            if signed != ours:
                return max(lo, last_good), lo + size - 1
            lo += size
    return last_good, cp.size - 1


def _start(session: Session, since: Verified | None, report: VerifyReport) -> merkle.Frontier:
    """Where this check starts: the earlier check's checkpoint if it is still signed and unchanged, else 0."""
    frontier = since.frontier() if since is not None else None
    if since is None or frontier is None or since.size == 0:
        return merkle.Frontier()
    cp = session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.tree_size == since.size)).first()
    if cp is None:
        report.bad_range(
            0,
            since.size - 1,
            f"the checkpoint at size {since.size}, signed and matched by an earlier check, is gone from the database",
        )
        return merkle.Frontier()
    if cp.root_hash != since.root.hex():  # the record of the last check is not that checkpoint: check everything
        return merkle.Frontier()
    report.since, report.verified = since.size, since
    return frontier


def _resumed(report: VerifyReport, checkpoints: list[_Signed], frontier: merkle.Frontier) -> list[_Signed]:
    """The checkpoints after the one this check starts from (which must still verify, as the first one)."""
    if not frontier.size:
        return checkpoints
    # the starting checkpoint itself was checked by _start; its signature too:
    if not checkpoints or checkpoints[0].size != frontier.size or checkpoints[0].root != frontier.root():
        report.bad_range(0, frontier.size - 1, f"the checkpoint at size {frontier.size} no longer verifies")
    return [cp for cp in checkpoints if cp.size > frontier.size]


@dataclass
class _Walk:
    """One streaming pass over the entries: the tree recomputed so far and the checkpoints ahead of it."""

    report: VerifyReport
    frontier: merkle.Frontier
    checkpoints: list[_Signed]
    pending: list[_Signed] = field(init=False)
    expected: int = field(init=False)  # the sequence number the next row should carry
    last_good: int = field(init=False)  # the size of the last checkpoint the recomputed tree matched
    covering: int = 0  # index of the first checkpoint whose size is above the current entry

    def __post_init__(self) -> None:
        self.pending = list(self.checkpoints)
        self.expected = self.last_good = self.frontier.size
        while self.pending and self.pending[0].size == 0:  # a checkpoint signed before anything was logged
            cp = self.pending.pop(0)
            if cp.root != merkle.EMPTY_ROOT:
                self.report.bad_range(0, 0, "checkpoint at size 0 does not carry the empty tree's root")

    def entry(self, row: Any) -> None:
        """Check one row against its stored leaf hash and its checkpoint's leaf copy, then add it to the tree."""
        seq = row[2]
        if seq != self.expected:
            self.report.bad(
                self.expected,
                f"entries {self.expected}..{seq - 1} are missing: deleted from the database"
                if seq > self.expected
                else f"entry {seq} appears twice",
            )
            self.expected = seq
        leaf = auditlog.columns_leaf_hash(*row[2:])
        while self.covering < len(self.checkpoints) and self.checkpoints[self.covering].size <= seq:
            self.covering += 1
        covered_by = self.checkpoints[self.covering] if self.covering < len(self.checkpoints) else None
        signed_leaf = covered_by.copy_of(seq) if covered_by is not None else None
        if leaf.hex() != row[1]:
            self.report.bad(
                seq, f"entry {seq} (id {row[0]}, {row.action}) was altered: its content no longer matches its leaf hash"
            )
        elif covered_by is not None and signed_leaf is not None and leaf != signed_leaf:
            self.report.bad(
                seq,
                f"entry {seq} (id {row[0]}, {row.action}) was rewritten together with its leaf hash: "
                f"it differs from the entry signed in the checkpoint at size {covered_by.size}",
            )
        self.frontier.append(leaf)
        self.expected += 1
        self._reach_checkpoints()

    def _reach_checkpoints(self) -> None:
        """Compare the recomputed root with every checkpoint signed at the tree's current size."""
        while self.pending and self.pending[0].size == self.frontier.size:
            cp = self.pending.pop(0)
            if self.frontier.root() == cp.root:
                self.last_good = cp.size
                self.report.verified = Verified(cp.size, cp.root, tuple(self.frontier.subtrees))
                continue
            first, last = _narrow(cp, self.frontier, self.last_good)
            self.report.bad_range(
                first,
                last,
                f"checkpoint at size {cp.size} does not match the log: an entry among "
                f"{first}..{last} was altered, removed or inserted",
            )

    def finish(self, head: int) -> None:
        """Name the checkpoints beyond the last entry, and a log head that disagrees with the rows."""
        size = self.report.entries = self.frontier.size
        for cp in self.pending:
            self.report.bad(
                size,
                f"checkpoint at size {cp.size} covers entries {size}..{cp.size - 1}, which the database no longer has",
            )
        if head != size:
            self.report.bad_range(
                min(head, size), max(head, size) - 1, f"the log head says {head} entries, the database holds {size}"
            )


def verify_log(
    session: Session, public_key: NoteKeys, origin: str | None = None, since: Verified | None = None
) -> VerifyReport:
    """Recompute every leaf from its row and every checkpointed root from the leaves; report what differs.

    One streaming pass: a row edited in place shows as a leaf-hash mismatch, a deleted row as a gap
    in the sequence, and a row rewritten together with its stored hash as a difference from the leaf
    copy its checkpoint signed (or, for older checkpoints, as a signed subtree whose root differs).

    Given ``since`` (what an earlier check verified), only the entries after it are read: the tree is
    extended from its state, so reaching each later signed root also proves the log grew from the
    verified one without a change to what came before (consistency).
    """
    report = VerifyReport()
    frontier = _start(session, since, report)
    checkpoints = _resumed(report, _signed_checkpoints(session, public_key, origin, report, frontier), frontier)
    walk = _Walk(report, frontier, checkpoints)
    rows = select(*ENTRY_COLUMNS).where(AuditEvent.seq >= frontier.size).order_by(AuditEvent.seq)
    for row in stream_rows(session, rows):
        walk.entry(row)
    walk.finish(log_size(session))
    return report
