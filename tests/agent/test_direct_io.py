"""Spool and staging bytes written and read around the page cache: identical bytes, whatever the
alignment, and a clean fall-back where the filesystem refuses O_DIRECT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from custodia_wire import directio
from custodia_wire.directio import ALIGN, DirectWriter
from ingest_agent.client import _SpoolReader

SHM = Path("/dev/shm")


def write_blocks(path: Path, blocks: list[bytes], offset: int = 0) -> DirectWriter:
    fd, direct = directio.open_direct(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        out = DirectWriter(fd, direct, offset)
        buf = directio.aligned_buffer(max(len(b) for b in blocks))
        for block in blocks:
            buf[: len(block)] = block
            out.write(memoryview(buf)[: len(block)])
        os.fsync(fd)
    finally:
        os.close(fd)
    return out


@pytest.mark.parametrize("where", ["disk", "tmpfs"])
def test_aligned_blocks_then_an_odd_tail_come_back_byte_for_byte(tmp_path: Path, where: str) -> None:
    if where == "tmpfs" and not SHM.is_dir():
        pytest.skip("no /dev/shm (tmpfs) here")
    path = (tmp_path if where == "disk" else SHM) / f"custodia-direct-{os.getpid()}.bin"
    blocks = [os.urandom(4 * ALIGN), os.urandom(8 * ALIGN), os.urandom(1234)]
    try:
        out = write_blocks(path, blocks)
        assert path.read_bytes() == b"".join(blocks)
        assert out.offset == path.stat().st_size
        assert not out.direct  # the odd tail switched it to buffered writes for good
    finally:
        path.unlink(missing_ok=True)


def test_resuming_at_an_unaligned_offset_appends_correctly(tmp_path: Path) -> None:
    path = tmp_path / "staged.part"
    head = os.urandom(1000)
    path.write_bytes(head)
    rest = [os.urandom(2 * ALIGN), os.urandom(3 * ALIGN)]
    out = write_blocks(path, rest, offset=len(head))
    assert path.read_bytes() == head + b"".join(rest)
    assert not out.direct


@pytest.mark.parametrize(
    ("size", "offset"),
    [
        (0, 0),
        (10, 0),
        (3 * _SpoolReader.BLOCK + 17, 0),
        (3 * _SpoolReader.BLOCK + 17, 5 * ALIGN + 3),
        (_SpoolReader.BLOCK, _SpoolReader.BLOCK - 1),
    ],
)
def test_spool_reader_gives_exactly_the_asked_range(tmp_path: Path, size: int, offset: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "0000000001.rec"
    path.write_bytes(data)
    seen: list[int] = []
    with _SpoolReader(path) as reader:
        got = b"".join(bytes(p) for p in reader.pieces(offset, size - offset, seen.append))
        assert got == data[offset:]
        assert seen == sorted(seen) and (not seen or seen[-1] == size)
        # a range that runs past the end of the file is an error, never a short body
        with pytest.raises(OSError, match="shorter than expected"):
            b"".join(bytes(p) for p in reader.pieces(offset, size - offset + 5, None))
