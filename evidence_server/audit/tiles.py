"""The audit log's interior hashes as tiles, so that inclusion and consistency proofs read O(log n) hashes.

Laid out in the manner of C2SP tlog-tiles (as Trillian Tessera writes them): the hashes of the
nodes at heights 0, 8, 16, … are grouped 256 to a tile; a node of any other height is the root of
at most 128 consecutive hashes of one tile. Tiles are built by the checkpoint task
(``extend_tiles``), from the stored leaf hashes, up to the size being signed; ``TreeReader``
answers a proof's ``subtree(lo, hi)`` questions from them.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from custodia_wire import merkle
from custodia_wire.auditlog import LogError
from evidence_server.audit.models import AuditEvent, AuditTile

#: log2 of a tile's width (256 hashes), as in tlog-tiles. Tests pass a smaller one.
TILE_HEIGHT = 8
BATCH_TILES = 64  # tiles written per statement while building


def perfect_root(hashes: list[bytes]) -> bytes:
    """The root of a perfect subtree over ``hashes`` (a power of two of them)."""
    level = hashes
    while len(level) > 1:
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def full_tiles(session: Session, level: int) -> int:
    """How many full tiles of ``level`` are stored (they are built left to right, with no gaps)."""
    top = session.scalar(select(func.max(AuditTile.idx)).where(AuditTile.level == level))
    return 0 if top is None else int(top) + 1


def _leaf_hashes(session: Session, start: int, end: int) -> Iterator[bytes]:
    """Stored leaf hashes of entries start..end-1, in order; LogError on a gap."""
    expected = start
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.leaf_hash)
        .where(AuditEvent.seq >= start, AuditEvent.seq < end)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=20_000)
    )
    for seq, leaf in rows:
        if seq != expected:
            raise LogError(f"audit entry {expected} is missing from the database")
        expected += 1
        yield bytes.fromhex(leaf)
    if expected != end:
        raise LogError(f"audit entry {expected} is missing from the database")


def _write(session: Session, level: int, tiles: list[tuple[int, list[bytes]]]) -> None:
    if tiles:
        session.execute(
            insert(AuditTile),
            [{"level": level, "idx": i, "hashes": b"".join(h), "root": perfect_root(h)} for i, h in tiles],
        )


def extend_tiles(session: Session, size: int, height: int = TILE_HEIGHT) -> int:
    """Store every full tile of the first ``size`` entries not stored yet; return how many were written.

    Idempotent; the caller commits. Level 0 is read from the entries' stored leaf hashes, each higher
    level from the roots of the level below.
    """
    width = 1 << height
    written, level = 0, 0
    have, want = full_tiles(session, 0), size >> height
    if want > have:
        batch: list[tuple[int, list[bytes]]] = []
        chunk: list[bytes] = []
        idx = have
        for leaf in _leaf_hashes(session, have << height, want << height):
            chunk.append(leaf)
            if len(chunk) == width:
                batch.append((idx, chunk))
                idx, chunk = idx + 1, []
                if len(batch) == BATCH_TILES:
                    _write(session, 0, batch)
                    written, batch = written + len(batch), []
        _write(session, 0, batch)
        written += len(batch)
    below = want
    while below >= width:
        level += 1
        have, want = full_tiles(session, level), below >> height
        for idx in range(have, want):
            roots = list(
                session.scalars(
                    select(AuditTile.root)
                    .where(AuditTile.level == level - 1, AuditTile.idx >= idx << height)
                    .where(AuditTile.idx < (idx + 1) << height)
                    .order_by(AuditTile.idx)
                )
            )
            _write(session, level, [(idx, roots)])
            written += 1
        below = want
    return written


class TreeReader:
    """MTH(D[lo:hi]) of the log's first ``size`` entries, from tiles (and at most a tile's width of
    leaf hashes or tile roots at the right edge). Each tile or range is read once per reader."""

    def __init__(self, session: Session, size: int, height: int = TILE_HEIGHT) -> None:
        self.session, self.size, self.height, self.width = session, size, height, 1 << height
        self._tiles: dict[tuple[int, int], list[bytes] | None] = {}

    def subtree(self, lo: int, hi: int) -> bytes:
        if not 0 <= lo < hi <= self.size:
            raise LogError(f"no leaves {lo}..{hi - 1} in a tree of size {self.size}")
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.node(n.bit_length() - 1, lo // n)
        k = merkle.split_point(n)
        return merkle.node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def node(self, height: int, index: int) -> bytes:
        """The hash of the perfect subtree of ``height`` numbered ``index`` (leaves index·2^height on)."""
        level, rest = divmod(height, self.height)
        count = 1 << rest
        return perfect_root(self._hashes(level, index << rest, count))

    def tile(self, level: int, idx: int, width: int) -> bytes:
        """The data of tile ``level``/``idx`` holding ``width`` hashes, as tlog-tiles serves it: the hashes
        concatenated (a full tile from storage, a partial one of the right edge computed)."""
        if not 0 < width <= self.width:
            raise LogError(f"a tile holds 1 to {self.width} hashes")
        last = ((idx * self.width + width) << (level * self.height)) - 1  # the last leaf under the tile
        if idx < 0 or level < 0 or last >= self.size:
            raise LogError(f"tile {level}/{idx} of width {width} is beyond a tree of size {self.size}")
        return b"".join(self._hashes(level, idx * self.width, width))

    def _tile(self, level: int, idx: int) -> list[bytes] | None:
        key = (level, idx)
        if key not in self._tiles:
            blob = self.session.scalar(select(AuditTile.hashes).where(AuditTile.level == level, AuditTile.idx == idx))
            self._tiles[key] = None if blob is None else [blob[i : i + 32] for i in range(0, len(blob), 32)]
        return self._tiles[key]

    def _hashes(self, level: int, first: int, count: int) -> list[bytes]:
        """Hashes of the nodes of height ``level * tile height``, ``first`` to ``first + count - 1``
        (always within one tile: count ≤ the width, first aligned to it)."""
        idx, offset = divmod(first, self.width)
        tile = self._tile(level, idx)
        if tile is not None:
            return tile[offset : offset + count]
        if level == 0:  # the right edge: the stored leaf hashes themselves
            return list(_leaf_hashes(self.session, first, first + count))
        # the right edge of a higher level: the roots of the full tiles below (or, on a log whose
        # tiles are not built yet, those roots computed from what is there)
        roots = dict(
            self.session.execute(
                select(AuditTile.idx, AuditTile.root).where(
                    AuditTile.level == level - 1, AuditTile.idx >= first, AuditTile.idx < first + count
                )
            ).all()
        )
        return [
            roots.get(j) or perfect_root(self._hashes(level - 1, j * self.width, self.width))
            for j in range(first, first + count)
        ]


def parse_tile_path(path: str, height: int = TILE_HEIGHT) -> tuple[int, int, int]:
    """``<L>/<N>[.p/<W>]`` of a tlog-tiles URL (``N`` in 3-digit groups, all but the last ``x``-prefixed)
    → (level, index, width). ValueError when malformed."""
    level_text, _, rest = path.partition("/")
    width = 1 << height
    if ".p/" in rest:
        rest, _, w = rest.partition(".p/")
        if not w.isdigit() or not 0 < int(w) < width or w != str(int(w)):
            raise ValueError(f"bad partial width in {path!r}")
        width = int(w)
    groups = rest.split("/")
    if (
        not level_text.isdigit()
        or not groups
        or any(len(g) != (4 if i < len(groups) - 1 else 3) for i, g in enumerate(groups))
    ):
        raise ValueError(f"not a tile path: {path!r}")
    if any(not g.lstrip("x").isdigit() or (g[0] != "x") != (i == len(groups) - 1) for i, g in enumerate(groups)):
        raise ValueError(f"not a tile path: {path!r}")
    return int(level_text), int("".join(g.lstrip("x") for g in groups)), width
