from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from custodia_wire.fingerprint import BLOCK_SIZE, Hasher


class StorageFullError(OSError):
    """The object store has no room; nothing was stored and the upload can be retried."""


class ObjectLockedError(OSError):
    """WORM storage refused to delete a locked object (retain-until date not reached, or a legal hold)."""


@dataclass(frozen=True)
class ObjectLock:
    """What WORM storage holds for an object: its lock mode, retain-until date and legal hold."""

    mode: str | None
    until: datetime | None
    legal_hold: bool


DERIVED_PREFIX = "derived/"


def object_key(blake3_hex: str) -> str:
    """``blake3/ab/cd/<hex>``: the key of a recording's bytes, whatever the backend."""
    return f"blake3/{blake3_hex[:2]}/{blake3_hex[2:4]}/{blake3_hex}"


def derived_key(kind: str, source_blake3_hex: str, blake3_hex: str, suffix: str) -> str:
    """``derived/<kind>/ab/<source hex>/<own hex><suffix>``: never under ``blake3/``, never evidence."""
    return f"{DERIVED_PREFIX}{kind}/{source_blake3_hex[:2]}/{source_blake3_hex}/{blake3_hex}{suffix}"


class ObjectStore(ABC):
    """Write-once storage of verified bytes. Keys are derived from content, so a put is idempotent."""

    @abstractmethod
    def put_verified(self, staged: Path, blake3_hex: str, sha256_hex: str, size: int) -> str:
        """Move a verified staging file into the store (consuming it); return the object key.

        If the key already holds the same bytes (checked by their digests, see ``holds``), the staging
        file is dropped: nothing is stored twice. If it holds other bytes (a damaged copy), they are
        replaced by the verified ones.
        """

    def put_derived(self, staged: Path, key: str) -> str:
        """Move a derived file (a proxy, a thumbnail) under ``derived/…``, apart from the evidence."""
        raise NotImplementedError

    def holds(self, key: str, blake3_hex: str, sha256_hex: str, size: int) -> bool:
        """Does the store hold exactly these bytes under ``key``? Read back and hashed, never judged by
        size: a damaged copy of the right length is not the evidence, and a fresh upload replaces it."""
        if not self.exists(key):
            return False
        if size == 0:
            return self.size(key) == 0  # zero bytes have one fingerprint
        h = Hasher()
        try:
            for block in self.iter_range(key, chunk=BLOCK_SIZE):
                h.update(block)
        except FileNotFoundError:
            return False
        got = h.result()
        return (got.blake3_hex, got.sha256_hex, got.size) == (blake3_hex, sha256_hex, size)

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def iter_range(self, key: str, start: int = 0, end: int | None = None, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        """Yield bytes ``start`` to ``end`` inclusive (``end`` None: to the last byte)."""

    def iter_keys(self) -> Iterator[tuple[str, int, datetime]]:
        """Every stored object as (key, size, last modified): the fixity sweep's orphan check."""
        raise NotImplementedError

    @abstractmethod
    def locator(self, key: str) -> str:
        """A path or short-lived URL that ffprobe/ffmpeg can read the object from."""

    # retention (see evidence_server/retention): stores without WORM support answer False / None

    def set_retention(self, key: str, until: datetime) -> bool:
        """Lock the object until ``until`` (only ever later); True if the store keeps such a date."""
        return False

    def set_legal_hold(self, key: str, on: bool) -> bool:
        """Put the store's own legal hold on the object, or take it off; True if the store has one."""
        return False

    def lock_of(self, key: str) -> ObjectLock | None:
        """The object's lock as the store reports it; None for stores without locks."""
        return None

    def delete(self, key: str) -> None:
        """Remove the object for good: an approved disposal only. Missing objects are not an error."""
        raise NotImplementedError


class ObjectMissingError(FileNotFoundError):
    """The object is not in the store (a read of it cannot start)."""
