"""Block maps, pure: any range is checked alone, and every kind of damage is caught before a byte of it
is handed on."""

from __future__ import annotations

import os

import blake3
import pytest

from evidence_server.storage.blockmap import BlockHasher, BlockMismatch, of_chunks, root_of, verified_range

BS = 64 * 1024
DATA = os.urandom(5 * BS + 1234)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _read(data: bytes, start: int, end: int, piece: int = 7000) -> list[bytes]:
    first, last = start // BS, end // BS
    return _pieces(data[first * BS : min(len(data), (last + 1) * BS)], piece)


@pytest.mark.parametrize("piece", [1, 1000, BS, 3 * BS + 5])
def test_the_map_does_not_depend_on_how_the_bytes_arrive(piece: int) -> None:
    assert of_chunks(_pieces(DATA, piece), BS) == of_chunks([DATA], BS)


def test_the_root_is_a_published_rule() -> None:
    bm = of_chunks([DATA], BS)
    digests = b"".join(blake3.blake3(DATA[i : i + BS]).digest() for i in range(0, len(DATA), BS))
    expect = blake3.blake3(b"custodia.blockmap/1\x00" + BS.to_bytes(8, "big") + len(DATA).to_bytes(8, "big") + digests)
    assert bm.hashes == digests and bm.root == "blake3:" + expect.hexdigest()
    assert of_chunks([], BS).root == root_of(BS, 0, b"") and of_chunks([], BS).count == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (0, len(DATA) - 1), (BS - 1, BS), (3 * BS + 9, 5 * BS + 100), (len(DATA) - 1, len(DATA) - 1)],
)
def test_any_range_of_intact_bytes_comes_out_exactly(start: int, end: int) -> None:
    bm = of_chunks([DATA], BS)
    assert b"".join(verified_range(bm, _read(DATA, start, end), start, end)) == DATA[start : end + 1]


def test_a_flipped_byte_stops_the_read_before_its_block() -> None:
    bm = of_chunks([DATA], BS)
    bad = bytearray(DATA)
    bad[2 * BS + 17] ^= 0x80
    out = []
    with pytest.raises(BlockMismatch) as caught:
        for piece in verified_range(bm, _read(bytes(bad), 0, len(DATA) - 1), 0, len(DATA) - 1):
            out.append(piece)
    assert caught.value.block == 2 and b"".join(out) == DATA[: 2 * BS]  # blocks 0 and 1 only
    # a range that does not touch the damaged block is still served: it is checked alone
    assert b"".join(verified_range(bm, _read(bytes(bad), 4 * BS, 4 * BS + 10), 4 * BS, 4 * BS + 10))


@pytest.mark.parametrize("cut", [1, BS, 3 * BS + 2])
def test_a_shorter_copy_is_damage(cut: int) -> None:
    bm = of_chunks([DATA], BS)
    short = DATA[:-cut]
    with pytest.raises(BlockMismatch):
        b"".join(verified_range(bm, _read(short, 0, len(DATA) - 1), 0, len(DATA) - 1))


def test_the_hasher_counts_every_byte() -> None:
    h = BlockHasher(BS)
    for piece in _pieces(DATA, 9999):
        h.update(memoryview(piece))
    assert h.size == len(DATA) and h.result().well_formed()
