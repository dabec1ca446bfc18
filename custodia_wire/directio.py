"""Writing (and reading) footage without going through the page cache, where the filesystem allows.

Footage passes through a station's spool and a server's staging area exactly once, and is then
read by someone else much later (the uploader, the fixity sweep). Buffered writes copy every byte
into freshly allocated page-cache pages, which on virtual machines is the dearest part of the
whole copy (every new guest page is a fault on the host) and which evicts what is worth caching.
``O_DIRECT`` hands the user buffer to the disk instead.

``O_DIRECT`` needs the buffer address, the file offset and the length aligned to the device's
block size. :func:`aligned_buffer` gives page-aligned buffers; :class:`DirectWriter` writes
aligned blocks directly and falls back, for good, to ordinary buffered writes at the first block
that is not aligned (the tail of a file, a resume at an odd offset) or on a filesystem that
refuses ``O_DIRECT`` (tmpfs, some FUSE and network filesystems). Correctness never depends on
it: the bytes and the fsync that follows are the same either way.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Callable

#: Offsets and lengths must be multiples of this for O_DIRECT (the page size covers every disk).
ALIGN = mmap.PAGESIZE if mmap.PAGESIZE >= 4096 else 4096
O_DIRECT: int = getattr(os, "O_DIRECT", 0)

_pool: dict[int, list[mmap.mmap]] = {}
_pool_lock = threading.Lock()
_POOL_MAX = 16


def aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned, writable buffer of ``size`` bytes (anonymous memory)."""
    return mmap.mmap(-1, size)


def borrow(size: int) -> mmap.mmap:
    """An aligned buffer from a small free list: reusing one avoids faulting in fresh pages per file."""
    with _pool_lock:
        free = _pool.get(size)
        if free:
            return free.pop()
    return aligned_buffer(size)


def give_back(buf: mmap.mmap) -> None:
    with _pool_lock:
        free = _pool.setdefault(len(buf), [])
        if len(free) < _POOL_MAX:
            free.append(buf)


def open_direct(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> tuple[int, bool]:
    """Open (to read or write) with ``O_DIRECT`` added when the filesystem takes it: (fd, direct)."""
    if O_DIRECT:
        try:
            return os.open(path, flags | O_DIRECT, mode), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    return os.open(path, flags, mode), False


def drop_direct(fd: int) -> None:
    """Switch an fd to ordinary buffered I/O."""
    if O_DIRECT:
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        if fl & O_DIRECT:
            fcntl.fcntl(fd, fcntl.F_SETFL, fl & ~O_DIRECT)


class DirectWriter:
    """Appends blocks to ``fd``: directly while everything is aligned, buffered from then on.

    ``offset`` is the file position the next write lands at (the caller's bookkeeping: for an
    ``O_APPEND`` fd, the file's size); ``write`` is the system call (a seam for fault injection).
    ``aligned_memory`` says the blocks handed in start at
    page-aligned addresses (slices at offset 0 of :func:`aligned_buffer` buffers).
    """

    def __init__(
        self, fd: int, direct: bool, offset: int = 0, write: Callable[[int, memoryview], int] = os.write
    ) -> None:
        self.fd = fd
        self._write = write
        self.direct = direct
        self.offset = offset
        if direct and offset % ALIGN:
            self._fall_back()

    def _fall_back(self) -> None:
        if self.direct:
            drop_direct(self.fd)
            self.direct = False

    def write(self, block: memoryview | bytes | bytearray, aligned_memory: bool = True) -> None:
        view = memoryview(block).cast("B")
        if self.direct and not (aligned_memory and len(view) % ALIGN == 0):
            self._fall_back()
        while view:
            try:
                n = self._write(self.fd, view)
            except OSError as exc:
                if exc.errno == errno.EINVAL and self.direct:
                    self._fall_back()  # this filesystem or buffer will not do O_DIRECT after all
                    continue
                raise
            if self.direct and n % ALIGN:
                self._fall_back()  # a short direct write leaves the offset unaligned
            self.offset += n
            view = view[n:]
