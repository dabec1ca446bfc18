"""Block maps: BLAKE3 of each fixed-size block of a recording, so any byte range can be checked alone.

A whole-file fingerprint can only be checked by reading the whole file; a player's HTTP Range
request reads a few megabytes. The block map holds the BLAKE3 digest of every block (1 MiB by
default; the last one may be shorter) and a root over all of them. The root goes into the
recording's ``recording.verified`` audit entry, so the log binds the map: a map whose root is not
the one logged is not trusted, and a block whose digest is not the one in the map is damage.

The root is BLAKE3 over ``custodia.blockmap/1\\0``, the block size and the file size as 8-byte
big-endian integers, then the block digests in order. Anyone holding the original can recompute it
(``docs/cases.md``). Everything here is pure: bytes in, digests out, no storage or database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import blake3

FORMAT = b"custodia.blockmap/1\x00"
DEFAULT_BLOCK_SIZE = 1024 * 1024
DIGEST = 32


class BlockMismatch(Exception):
    """Bytes read do not match the block map: the stored copy is damaged (or shorter than recorded)."""

    def __init__(self, block: int, offset: int, why: str) -> None:
        super().__init__(f"block {block} at byte {offset}: {why}")
        self.block, self.offset, self.why = block, offset, why


def root_of(block_size: int, size: int, hashes: bytes) -> str:
    """The map's root, ``blake3:<hex>``."""
    h = blake3.blake3(FORMAT)
    h.update(block_size.to_bytes(8, "big"))
    h.update(size.to_bytes(8, "big"))
    h.update(hashes)
    return "blake3:" + h.hexdigest()


def blocks_for(size: int, block_size: int) -> int:
    return (size + block_size - 1) // block_size


@dataclass(frozen=True)
class BlockMap:
    block_size: int
    size: int
    hashes: bytes  # DIGEST bytes per block, in order

    @property
    def root(self) -> str:
        return root_of(self.block_size, self.size, self.hashes)

    @property
    def count(self) -> int:
        return len(self.hashes) // DIGEST

    def well_formed(self) -> bool:
        return (
            self.block_size > 0
            and len(self.hashes) % DIGEST == 0
            and self.count == blocks_for(self.size, self.block_size)
        )

    def digest(self, block: int) -> bytes:
        return self.hashes[block * DIGEST : (block + 1) * DIGEST]

    def block_length(self, block: int) -> int:
        return min(self.block_size, self.size - block * self.block_size)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The blocks covering bytes ``start``..``end`` inclusive, as (first, last)."""
        return start // self.block_size, end // self.block_size


class BlockHasher:
    """Feeds a byte stream in pieces of any size; keeps the BLAKE3 digest of every full block."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.block_size = block_size
        self.size = 0
        self._digests = bytearray()
        self._current = blake3.blake3()
        self._fill = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            take = min(len(view), self.block_size - self._fill)
            if take == self.block_size:  # a whole block at once: no running state to keep
                self._digests += blake3.blake3(view[:take]).digest()
            else:
                self._current.update(view[:take])
                self._fill += take
                if self._fill == self.block_size:
                    self._digests += self._current.digest()
                    self._current, self._fill = blake3.blake3(), 0
            self.size += take
            view = view[take:]

    def result(self) -> BlockMap:
        digests = bytes(self._digests)
        if self._fill:
            digests += self._current.digest()
        return BlockMap(self.block_size, self.size, digests)


def of_chunks(chunks: Iterable[bytes], block_size: int = DEFAULT_BLOCK_SIZE) -> BlockMap:
    h = BlockHasher(block_size)
    for chunk in chunks:
        h.update(chunk)
    return h.result()


def _blocks(chunks: Iterable[bytes], first_len: int, block_size: int) -> Iterator[bytes]:
    """Regroup chunks of any size into whole blocks (the first of ``first_len`` bytes)."""
    want, buf = first_len, bytearray()
    for chunk in chunks:
        if not buf and len(chunk) == want:
            yield chunk
            want = block_size
            continue
        buf += chunk
        while len(buf) >= want:
            yield bytes(buf[:want])
            del buf[:want]
            want = block_size
    if buf:
        yield bytes(buf)


def verified_range(bm: BlockMap, read: Iterable[bytes], start: int, end: int) -> Iterator[bytes]:
    """Check ``read`` (the stored bytes of the whole blocks covering ``start``..``end``) block by block
    against the map, and yield exactly bytes ``start``..``end``. Nothing of a block is yielded before
    the block was checked; a damaged or missing block raises BlockMismatch."""
    first, last = bm.span(start, end)
    block = first
    for data in _blocks(read, bm.block_length(first), bm.block_size):
        if block > last:
            break
        if len(data) != bm.block_length(block):
            raise BlockMismatch(block, block * bm.block_size, f"{len(data)} bytes where {bm.block_length(block)}")
        if blake3.blake3(data).digest() != bm.digest(block):
            raise BlockMismatch(block, block * bm.block_size, "BLAKE3 differs from the block map")
        lo = max(start - block * bm.block_size, 0)
        hi = min(end - block * bm.block_size, len(data) - 1)
        yield data if (lo == 0 and hi == len(data) - 1) else data[lo : hi + 1]
        block += 1
    if block <= last:
        raise BlockMismatch(block, block * bm.block_size, "the stored copy ends here")
