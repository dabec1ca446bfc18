"""The single-pass copy: each block is read from the device once and fed to the hashers and the spool.

Reading, hashing (``custodia_wire`` Hasher, which itself runs SHA-256 beside BLAKE3) and writing
overlap in threads (hashlib and blake3 release the GIL, and so do ``readinto`` and ``os.write``),
over a small ring of reused buffers. The spool file is written as ``<journal id>.part``,
fsync'd, renamed to ``<journal id>.rec`` and the directory fsync'd, so a spool file under its
final name is always complete. Spool names come from journal ids only, never from device names.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from custodia_wire import directio
from custodia_wire.directio import DirectWriter
from custodia_wire.fingerprint import Fingerprint, Hasher
from device_drivers.base import RecorderDriver
from device_drivers.errors import DeviceGoneError

#: Buffers in flight per copy: one being read, others being hashed and written.
RING = 4


class CopyError(Exception):
    """A copy that did not produce a spool file. ``reason`` is what the journal records."""

    retryable = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceChanged(CopyError):
    """The device file changed while it was being copied (or never settled)."""


class SpoolFull(CopyError):
    """No room in the spool (quota or disk); the device is left untouched."""


class CopyAborted(CopyError):
    """The agent is stopping."""


class SourceReadError(CopyError):
    """Reading the device failed in a way the driver did not classify."""


@dataclass(frozen=True)
class CopyResult:
    fingerprint: Fingerprint
    spool_path: Path
    copied_at: datetime


class Spool:
    """The station's holding area: complete copies waiting for their receipt, under journal ids."""

    def __init__(self, directory: str | Path, max_bytes: int | None = None, reserve_bytes: int = 0) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._reserved = 0
        self._writing: set[Path] = set()

    def part_path(self, file_id: int) -> Path:
        return self.directory / f"{int(file_id):010d}.part"

    def final_path(self, file_id: int) -> Path:
        return self.directory / f"{int(file_id):010d}.rec"

    def used_bytes(self) -> int:
        """Bytes in complete spool files (partial copies are covered by their reservation)."""
        total = 0
        with os.scandir(self.directory) as it:
            for entry in it:
                if entry.name.endswith(".rec") and entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.directory).free

    def room(self) -> int:
        """Bytes that may still be reserved: the quota's rest, and never into the disk reserve."""
        with self._lock:
            room = self.free_bytes() - self.reserve_bytes - self._reserved
            if self.max_bytes is not None:
                room = min(room, self.max_bytes - self.used_bytes() - self._reserved)
            return max(room, 0)

    @contextmanager
    def reservation(self, size: int, file_id: int | None = None) -> Iterator[None]:
        """Hold ``size`` bytes of room while one copy runs, so parallel docks cannot overfill.

        While it is held, the partial copy of ``file_id`` is safe from ``sweep_partials``.
        """
        with self._lock:
            room = self.room()
            if size > room:
                raise SpoolFull(f"spool full: {size} bytes needed, {room} available")
            self._reserved += size
            if file_id is not None:
                self._writing.add(self.part_path(file_id))
        try:
            yield
        finally:
            with self._lock:
                self._reserved -= size
                if file_id is not None:
                    self._writing.discard(self.part_path(file_id))

    def remove(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)

    def sweep_partials(self) -> list[Path]:
        """Delete ``.part`` files left by a crash; the device still holds their originals."""
        removed = []
        with self._lock:
            for p in self.directory.glob("*.part"):
                if p not in self._writing:
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    def sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def mtime_iso(mtime: Any) -> str:
    """A driver mtime (aware datetime or POSIX seconds) in the journal's ISO form."""
    if isinstance(mtime, datetime):
        if mtime.tzinfo is None:
            raise ValueError("naive mtime from driver")
        ts = mtime.astimezone(UTC)
    else:
        ts = datetime.fromtimestamp(float(mtime), UTC)
    return ts.isoformat().replace("+00:00", "Z")


def wait_until_stable(
    driver: RecorderDriver,
    path: str,
    *,
    seconds: float,
    timeout: float,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    listed: tuple[int, str] | None = None,
    listed_at: float | None = None,
) -> tuple[int, datetime]:
    """Return (size, mtime) once they held still for ``seconds``; SourceChanged after ``timeout``.

    ``listed`` is the (size, ISO mtime) the dock's index read at ``listed_at`` (``clock`` time): a
    file that still has them has held still since then, so a file listed long enough ago is not
    waited for again (the copy itself checks once more that nothing changed under it).
    """
    size, mtime = driver.stat_recording(path)  # a list from some drivers: made a tuple to compare
    last = (size, mtime)
    since = clock()
    if listed is not None and listed_at is not None and (last[0], mtime_iso(last[1])) == tuple(listed):
        since = min(since, listed_at)
    deadline = since + timeout
    while clock() - since < seconds:
        if stop is not None and stop.is_set():
            raise CopyAborted("agent stopping")
        if clock() > deadline:
            raise SourceChanged(f"file did not settle within {timeout:.0f} s (still being written?)")
        sleep(min(0.2, max(seconds / 5, 0.01)))
        size, mtime = driver.stat_recording(path)
        now = (size, mtime)
        if now != last:
            last, since = now, clock()
    return last


def write_block(out: DirectWriter, block: memoryview) -> None:
    """Write all of ``block`` to the spool file (the one place spool bytes are written)."""
    out.write(block)


def copy_recording(
    driver: RecorderDriver,
    path: str,
    *,
    expected: tuple[int, datetime],
    spool: Spool,
    file_id: int,
    block_size: int = 8 * 1024 * 1024,
    stop: threading.Event | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy one device file into the spool in a single pass, returning its fingerprint.

    ``expected`` is the settled (size, mtime). Raises SpoolFull, SourceChanged, CopyAborted or
    SourceReadError (nothing left in the spool), or DeviceGoneError (likewise).
    """
    with spool.reservation(expected[0], file_id):
        hasher = _copy_to_spool(driver, path, expected, spool, file_id, block_size, stop, on_bytes)
    return CopyResult(fingerprint=hasher.result(), spool_path=spool.final_path(file_id), copied_at=datetime.now(UTC))


def _copy_to_spool(
    driver: RecorderDriver,
    path: str,
    expected: tuple[int, datetime],
    spool: Spool,
    file_id: int,
    block_size: int,
    stop: threading.Event | None,
    on_bytes: Callable[[int], None] | None,
) -> Hasher:
    size, _ = expected
    part, final = spool.part_path(file_id), spool.final_path(file_id)
    fd, direct = directio.open_direct(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            with driver.open_recording(path) as source:
                _advise_sequential(source)
                hasher = _pump(source, DirectWriter(fd, direct), size, block_size, stop, on_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)
        if hasher.size != size or tuple(driver.stat_recording(path)) != tuple(expected):
            raise SourceChanged("file changed while copying")
        os.replace(part, final)
        spool.sync_dir()
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return hasher


def _pump(
    source: BinaryIO,
    out: DirectWriter,
    size: int,
    block_size: int,
    stop: threading.Event | None,
    on_bytes: Callable[[int], None] | None,
) -> Hasher:
    """Read ``source`` to its end once, hashing and writing every block; return the hasher.

    Stops as soon as it has read more than ``size`` bytes: the file grew.
    """
    if size < block_size:  # small file: no threads needed
        hasher = Hasher()
        raw = directio.borrow(block_size)
        buf = memoryview(raw)
        try:
            total = 0
            while n := _read_into(source, buf):
                total += n
                _check_limits(total, size, stop)
                hasher.update(buf[:n])
                _write_spool(out, buf[:n])
                if on_bytes:
                    on_bytes(n)
        finally:
            directio.give_back(raw)
        return hasher
    return _pump_overlapped(source, out, size, block_size, stop, on_bytes)


def _pump_overlapped(
    source: BinaryIO,
    out: DirectWriter,
    size: int,
    block_size: int,
    stop: threading.Event | None,
    on_bytes: Callable[[int], None] | None,
) -> Hasher:
    """Read on this thread; hash and write each on their own thread (Hasher overlaps its digests).

    The ring's buffers are page-aligned and reused from copy to copy, so the spool is written with
    ``O_DIRECT`` and no fresh memory is faulted in per file.
    """
    hasher = Hasher()
    raws = [directio.borrow(block_size) for _ in range(RING)]
    ring = [memoryview(raw) for raw in raws]
    inflight: deque[tuple[list[Future[None]], int]] = deque()
    pools = [ThreadPoolExecutor(1, thread_name_prefix=f"custodia-{name}") for name in ("hash", "spool")]

    def settle_oldest() -> None:
        futures, n = inflight.popleft()
        for f in futures:
            f.result()
        if on_bytes:
            on_bytes(n)

    try:
        total, i = 0, 0
        while True:
            if len(inflight) == RING:
                settle_oldest()  # the buffer we are about to reuse is free again
            view = ring[i % RING]
            n = _read_into(source, view)
            if not n:
                break
            total += n
            _check_limits(total, size, stop)
            chunk = view[:n]
            inflight.append(([pools[0].submit(hasher.update, chunk), pools[1].submit(_write_spool, out, chunk)], n))
            i += 1
        while inflight:
            settle_oldest()
    finally:
        # never leave a thread touching a buffer or the fd after we return
        for futures, _ in inflight:
            for f in futures:
                f.cancel()
        for pool in pools:
            pool.shutdown(wait=True)
        for raw in raws:
            directio.give_back(raw)
    return hasher


def _check_limits(total: int, size: int, stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise CopyAborted("agent stopping")
    if total > size:
        raise SourceChanged("file changed while copying")


def _read_into(source: BinaryIO, view: memoryview) -> int:
    try:
        readinto = getattr(source, "readinto", None)
        if readinto is not None:
            return int(readinto(view) or 0)
        data = source.read(len(view))
        view[: len(data)] = data
        return len(data)
    except DeviceGoneError:
        raise
    except OSError as exc:
        raise SourceReadError(f"read error on device: {exc}") from exc


def _write_spool(out: DirectWriter, block: memoryview) -> None:
    try:
        write_block(out, block)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SpoolFull("spool full: the disk ran out of space") from exc
        raise


def _advise_sequential(source: Any) -> None:
    with suppress(AttributeError, OSError, ValueError):
        os.posix_fadvise(source.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
