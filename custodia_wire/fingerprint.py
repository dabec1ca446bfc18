"""Fingerprints: BLAKE3 and SHA-256 in one pass, written as ``blake3:<hex>`` / ``sha256:<hex>``."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3

#: Read size for every fingerprinting loop. Large enough that hashing runs at memory speed.
BLOCK_SIZE = 4 * 1024 * 1024

_NOTATION = re.compile(r"^(blake3|sha256):([0-9a-f]{64})$")


class FingerprintError(ValueError):
    """A fingerprint string is not in the ``algo:<64 hex>`` notation."""


@dataclass(frozen=True)
class Fingerprint:
    """Both digests of one byte stream, and its length."""

    blake3: str  # "blake3:<hex>"
    sha256: str  # "sha256:<hex>"
    size: int

    @property
    def blake3_hex(self) -> str:
        return self.blake3.split(":", 1)[1]

    @property
    def sha256_hex(self) -> str:
        return self.sha256.split(":", 1)[1]


def parse(notation: str, expected_algo: str | None = None) -> tuple[str, str]:
    """Split ``algo:<hex>`` into (algo, hex); raise FingerprintError on anything else."""
    m = _NOTATION.match(notation or "")
    if not m:
        raise FingerprintError(f"not a fingerprint: {notation!r} (want blake3:<64 hex> or sha256:<64 hex>)")
    if expected_algo and m.group(1) != expected_algo:
        raise FingerprintError(f"expected a {expected_algo} fingerprint, got {notation!r}")
    return m.group(1), m.group(2)


_OVERLAP_MIN = 256 * 1024
_sha_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _sha_executor() -> ThreadPoolExecutor:
    global _sha_pool
    with _pool_lock:
        if _sha_pool is None:
            _sha_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="sha256")
        return _sha_pool


class Hasher:
    """Feeds every block to BLAKE3 and SHA-256 together; the single pass the whole product uses.

    On large blocks SHA-256 runs on a pool thread while BLAKE3 runs on the caller's: both release
    the GIL, so the two digests take the time of the slower one rather than of both.
    """

    def __init__(self) -> None:
        self._b3 = blake3.blake3()
        self._sha = hashlib.sha256()
        self.size = 0

    def update(
        self,
        block: bytes | bytearray | memoryview,
        alongside: Callable[[bytes | bytearray | memoryview], object] | None = None,
    ) -> None:
        """Hash ``block``; ``alongside`` (another digest of the same bytes) runs while SHA-256 does."""
        if len(block) >= _OVERLAP_MIN:
            sha = _sha_executor().submit(self._sha.update, block)
            self._b3.update(block)
            if alongside is not None:
                alongside(block)
            sha.result()
        else:
            self._b3.update(block)
            self._sha.update(block)
            if alongside is not None:
                alongside(block)
        self.size += len(block)

    def result(self) -> Fingerprint:
        return Fingerprint(
            blake3="blake3:" + self._b3.hexdigest(),
            sha256="sha256:" + self._sha.hexdigest(),
            size=self.size,
        )


def of_stream(
    stream: BinaryIO, sink: Callable[[memoryview], object] | None = None, block_size: int = BLOCK_SIZE
) -> Fingerprint:
    """Fingerprint a stream to its end, handing each block to ``sink`` as it is read."""
    h = Hasher()
    buf = bytearray(block_size)
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        chunk = view[:n]
        h.update(chunk)
        if sink is not None:
            sink(chunk)
    return h.result()


def of_file(path: str | Path) -> Fingerprint:
    with open(path, "rb", buffering=0) as f:
        return of_stream(f)


def blake3_of_file(path: str | Path, block_size: int = 8 * 1024 * 1024) -> tuple[str, int]:
    """BLAKE3 alone, one thread, as a ``blake3:<hex>`` notation and the size read.

    For checks that need only the primary fingerprint (``custodia verify --check``), at the speed
    of ``b3sum --num-threads 1``: the buffer is reused and the file read with ``readinto``, not
    mapped (a file truncated under a mapping would kill the process with SIGBUS).
    """
    from custodia_wire import directio  # noqa: PLC0415  (keeps this module's import light)

    h = blake3.blake3()
    buf = directio.borrow(block_size)
    view = memoryview(buf)
    size = 0
    try:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                h.update(view[:n])
                size += n
    finally:
        view.release()
        directio.give_back(buf)
    return "blake3:" + h.hexdigest(), size


def of_bytes(data: bytes | Iterable[bytes]) -> Fingerprint:
    h = Hasher()
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(data)
    else:
        for block in data:
            h.update(block)
    return h.result()
