"""Fingerprints: BLAKE3 and SHA-256 in one pass, written as ``blake3:<hex>`` / ``sha256:<hex>``.

SM3 (GB/T 32905, ``sm3:<hex>``, what ``openssl dgst -sm3`` prints) joins the same pass where it is asked
for (``Hasher(sm3=True)``): the server computes it on receipt; a station only if configured to.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import blake3

#: Read size for every fingerprinting loop. Large enough that hashing runs at memory speed.
BLOCK_SIZE = 4 * 1024 * 1024

_NOTATION = re.compile(r"^(blake3|sha256|sm3):([0-9a-f]{64})$")


class FingerprintError(ValueError):
    """A fingerprint string is not in the ``algo:<64 hex>`` notation."""


@dataclass(frozen=True)
class Fingerprint:
    """Both digests of one byte stream, and its length (and its SM3 where it was asked for)."""

    blake3: str  # "blake3:<hex>"
    sha256: str  # "sha256:<hex>"
    size: int
    sm3: str | None = None  # "sm3:<hex>"

    @property
    def blake3_hex(self) -> str:
        return self.blake3.split(":", 1)[1]

    @property
    def sha256_hex(self) -> str:
        return self.sha256.split(":", 1)[1]


def new_sm3() -> Any:
    """An SM3 hash object from OpenSSL (hashlib has no SM3 of its own; every OpenSSL 1.1.1+ has it)."""
    return hashlib.new("sm3")


def sm3_of(data: bytes | bytearray | memoryview) -> str:
    """``sm3:<hex>`` of ``data``: what ``openssl dgst -sm3`` prints."""
    h = new_sm3()
    h.update(data)
    return "sm3:" + str(h.hexdigest())


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
    the GIL, so the two digests take the time of the slower one rather than of both. With ``sm3``, SM3
    runs on a second pool thread beside them (it is the slowest of the three, ~0.3 GB/s a core).
    """

    def __init__(self, sm3: bool = False) -> None:
        self._b3 = blake3.blake3()
        self._sha = hashlib.sha256()
        self._sm3 = new_sm3() if sm3 else None
        self.size = 0

    def update(
        self,
        block: bytes | bytearray | memoryview,
        alongside: Callable[[bytes | bytearray | memoryview], object] | None = None,
    ) -> None:
        """Hash ``block``; ``alongside`` (another digest of the same bytes) runs while SHA-256 does."""
        if len(block) >= _OVERLAP_MIN:
            pool = _sha_executor()
            sha = pool.submit(self._sha.update, block)
            sm3 = pool.submit(self._sm3.update, block) if self._sm3 is not None else None
            self._b3.update(block)
            if alongside is not None:
                alongside(block)
            sha.result()
            if sm3 is not None:
                sm3.result()
        else:
            self._b3.update(block)
            self._sha.update(block)
            if self._sm3 is not None:
                self._sm3.update(block)
            if alongside is not None:
                alongside(block)
        self.size += len(block)

    def result(self) -> Fingerprint:
        return Fingerprint(
            blake3="blake3:" + self._b3.hexdigest(),
            sha256="sha256:" + self._sha.hexdigest(),
            size=self.size,
            sm3=None if self._sm3 is None else "sm3:" + self._sm3.hexdigest(),
        )


def of_stream(
    stream: BinaryIO,
    sink: Callable[[memoryview], object] | None = None,
    block_size: int = BLOCK_SIZE,
    sm3: bool = False,
) -> Fingerprint:
    """Fingerprint a stream to its end, handing each block to ``sink`` as it is read."""
    h = Hasher(sm3)
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


def of_file(path: str | Path, sm3: bool = False) -> Fingerprint:
    with open(path, "rb", buffering=0) as f:
        return of_stream(f, sm3=sm3)


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


def of_bytes(data: bytes | Iterable[bytes], sm3: bool = False) -> Fingerprint:
    h = Hasher(sm3)
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(data)
    else:
        for block in data:
            h.update(block)
    return h.result()
