"""Receiving one tus upload: append to a staging file while computing the digests and the block map.

The digests are BLAKE3 and SHA-256 (which the station declared and the upload is checked against) and
SM3 (which the server adds for Chinese reviewers), all from the same single read of the bytes.

The staging file's size is the upload's offset, so the truth survives a server restart. The
digests are kept in memory per process; after a restart (or when another API process took the
earlier chunks) the existing prefix is hashed again once, then receiving goes on.

One request at a time works on an upload: it holds the upload's lock file (``locks/<id>.lock``,
``flock``, released by the kernel if the process dies) from its first byte until the upload is
verified and recorded, so a parallel PATCH is told 423 instead of racing the verification.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from custodia_wire import directio
from custodia_wire.directio import DirectWriter
from custodia_wire.fingerprint import BLOCK_SIZE, Fingerprint, Hasher
from evidence_server.storage.blockmap import DEFAULT_BLOCK_SIZE, BlockHasher, BlockMap


class OffsetMismatch(Exception):
    def __init__(self, expected: int) -> None:
        super().__init__(f"upload is at offset {expected}")
        self.expected = expected


class UploadBusy(Exception):
    """Another request is writing to this upload right now."""


class StagingFull(OSError):
    pass


class Digests:
    """The fingerprints (with SM3) and the block map of the bytes received so far, fed in one pass."""

    def __init__(self, block_size: int, sm3: bool = True) -> None:
        self.hasher = Hasher(sm3=sm3)
        self.blocks = BlockHasher(block_size)

    @property
    def size(self) -> int:
        return self.hasher.size

    def update(self, block: bytes | bytearray | memoryview) -> None:
        self.hasher.update(block, alongside=self.blocks.update)


@dataclass
class _State:
    digests: Digests


class Receiver:
    """Per-process registry of running digests, keyed by upload id."""

    def __init__(self, staging_dir: Path, block_size: int = DEFAULT_BLOCK_SIZE, sm3: bool = True) -> None:
        self.staging_dir = staging_dir
        self.block_size = block_size
        self.sm3 = sm3  # SM3 in the receiving pass (off: the SM3 backfill reads the stored copy later)
        staging_dir.mkdir(parents=True, exist_ok=True)
        (staging_dir / "locks").mkdir(exist_ok=True)
        self._states: dict[str, _State] = {}
        self._guard = threading.Lock()

    @contextmanager
    def locked(self, upload_id: str) -> Iterator[None]:
        """Hold the upload's lock, or raise UploadBusy at once if another request holds it."""
        path = self.staging_dir / "locks" / f"{self._checked(upload_id)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise UploadBusy() from exc
            try:
                if os.fstat(fd).st_ino != os.stat(path).st_ino:  # unlinked by its last holder meanwhile
                    raise UploadBusy()
            except FileNotFoundError as exc:
                raise UploadBusy() from exc
            yield
        finally:
            os.close(fd)

    def unlock_file(self, upload_id: str) -> None:
        """Remove the lock file of an upload that is finished (call while holding its lock)."""
        (self.staging_dir / "locks" / f"{self._checked(upload_id)}.lock").unlink(missing_ok=True)

    @staticmethod
    def _checked(upload_id: str) -> str:
        if not upload_id.isalnum():
            raise ValueError("bad upload id")
        return upload_id

    def path(self, upload_id: str) -> Path:
        return self.staging_dir / f"{self._checked(upload_id)}.part"

    def create(self, upload_id: str) -> None:
        fd = os.open(self.path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        with self._guard:
            self._states[upload_id] = _State(Digests(self.block_size, self.sm3))

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
            if state is None or state.digests.size != size:
                state = _State(self._rehash(path, size))
                self._states[upload_id] = state
        return Appender(fd, state.digests, DirectWriter(fd, direct, size, write=_write))

    def _rehash(self, path: Path, size: int) -> Digests:
        h = Digests(self.block_size, self.sm3)
        with open(path, "rb", buffering=0) as f:
            remaining = size
            while remaining:
                block = f.read(min(BLOCK_SIZE, remaining))
                if not block:
                    break
                h.update(block)
                remaining -= len(block)
        return h

    def finish(self, upload_id: str) -> tuple[Fingerprint, BlockMap]:
        """The fingerprints (SM3 included) and the block map of exactly the bytes staged for this upload."""
        with self._guard:
            state = self._states.pop(upload_id, None)
        size = self.offset(upload_id)
        digests = state.digests if state is not None and state.digests.size == size else None
        if digests is None:
            digests = self._rehash(self.path(upload_id), size)
        return digests.hasher.result(), digests.blocks.result()

    def discard(self, upload_id: str) -> None:
        with self._guard:
            self._states.pop(upload_id, None)
        self.path(upload_id).unlink(missing_ok=True)
        self.unlock_file(upload_id)


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

    def __init__(self, fd: int, hasher: Digests, writer: DirectWriter | None = None) -> None:
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
