"""Receiving one tus upload: append to a staging file while computing both digests.

The staging file's size is the upload's offset, so the truth survives a server restart. The
digests are kept in memory per process; after a restart (or when another API process took the
earlier chunks) the existing prefix is hashed again once, then receiving goes on.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from custodia_wire import directio
from custodia_wire.directio import DirectWriter
from custodia_wire.fingerprint import BLOCK_SIZE, Fingerprint, Hasher


class OffsetMismatch(Exception):
    def __init__(self, expected: int) -> None:
        super().__init__(f"upload is at offset {expected}")
        self.expected = expected


class UploadBusy(Exception):
    """Another request is writing to this upload right now."""


class StagingFull(OSError):
    pass


@dataclass
class _State:
    hasher: Hasher
    lock: threading.Lock


class Receiver:
    """Per-process registry of running digests, keyed by upload id."""

    def __init__(self, staging_dir: Path) -> None:
        self.staging_dir = staging_dir
        staging_dir.mkdir(parents=True, exist_ok=True)
        self._states: dict[str, _State] = {}
        self._guard = threading.Lock()

    def path(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise ValueError("bad upload id")
        return self.staging_dir / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        fd = os.open(self.path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        with self._guard:
            self._states[upload_id] = _State(Hasher(), threading.Lock())

    def offset(self, upload_id: str) -> int:
        return self.path(upload_id).stat().st_size

    def open_for_append(self, upload_id: str, offset: int) -> Appender:
        path = self.path(upload_id)
        fd, direct = directio.open_direct(path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise UploadBusy() from exc
        size = os.fstat(fd).st_size
        if size != offset:
            os.close(fd)
            raise OffsetMismatch(size)
        with self._guard:
            state = self._states.get(upload_id)
            if state is None or state.hasher.size != size:
                state = _State(self._rehash(path, size), threading.Lock())
                self._states[upload_id] = state
        return Appender(fd, state.hasher, DirectWriter(fd, direct, size, write=_write))

    @staticmethod
    def _rehash(path: Path, size: int) -> Hasher:
        h = Hasher()
        with open(path, "rb", buffering=0) as f:
            remaining = size
            while remaining:
                block = f.read(min(BLOCK_SIZE, remaining))
                if not block:
                    break
                h.update(block)
                remaining -= len(block)
        return h

    def finish(self, upload_id: str) -> Fingerprint:
        with self._guard:
            state = self._states.pop(upload_id, None)
        size = self.offset(upload_id)
        if state is None or state.hasher.size != size:
            return self._rehash(self.path(upload_id), size).result()
        return state.hasher.result()

    def discard(self, upload_id: str) -> None:
        with self._guard:
            self._states.pop(upload_id, None)
        self.path(upload_id).unlink(missing_ok=True)


_io: ThreadPoolExecutor | None = None
_io_lock = threading.Lock()


def _io_pool() -> ThreadPoolExecutor:
    global _io
    with _io_lock:
        if _io is None:
            _io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="staging-io")
        return _io


def _write(fd: int, view: memoryview) -> int:
    return os.write(fd, view)


class Appender:
    """Writes blocks to the staging file and the hashers together; fsyncs and unlocks on close.

    Blocks from :func:`custodia_wire.directio.borrow` buffers are written with ``O_DIRECT``
    (no page-cache copy); anything else, or an unaligned tail, is written the ordinary way.
    """

    def __init__(self, fd: int, hasher: Hasher, writer: DirectWriter | None = None) -> None:
        self.fd = fd
        self.hasher = hasher
        self.writer = writer or DirectWriter(fd, False, hasher.size, write=_write)

    def write(self, block: bytes | bytearray | memoryview, aligned_memory: bool = False) -> None:
        """Write the block (on an I/O thread) while hashing it (here): the two take turns no more.

        If the write fails, the file is rolled back to where it was; the hashers have then seen
        more than the file holds, so the next ``open_for_append`` hashes the file again instead of
        trusting them (``Receiver`` compares their size with the file's).
        """
        before = self.writer.offset
        writing = _io_pool().submit(self.writer.write, block, aligned_memory)
        try:
            self.hasher.update(block)
        finally:
            try:
                writing.result()
            except OSError as exc:
                os.ftruncate(self.fd, before)
                self.writer.offset = before
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StagingFull(exc.errno, "server staging area is full") from exc
                raise

    def close(self) -> None:
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
