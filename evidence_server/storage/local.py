"""Local disk store: files under ``objects/blake3/ab/cd/<hex>``, read-only once written."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from evidence_server.storage.base import DERIVED_PREFIX, ObjectStore, StorageFullError, object_key


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"key escapes the store: {key!r}")
        return p

    def put_verified(self, staged: Path, blake3_hex: str, sha256_hex: str, size: int) -> str:
        key = object_key(blake3_hex)
        dest = self.path_of(key)
        if self.holds(key, blake3_hex, sha256_hex, size):
            staged.unlink(missing_ok=True)
            return key
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            if staged.stat().st_dev == self.root.stat().st_dev:
                os.replace(staged, dest)
            else:
                self._copy_across(staged, dest)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(exc.errno, "object store is full") from exc
            raise
        os.chmod(dest, 0o444)
        fsync_dir(dest.parent)
        return key

    def put_derived(self, staged: Path, key: str) -> str:
        if not key.startswith(DERIVED_PREFIX):
            raise ValueError(f"not a derived key: {key!r}")
        dest = self.path_of(key)
        if dest.exists() and dest.stat().st_size == staged.stat().st_size:
            staged.unlink(missing_ok=True)
            return key
        dest.parent.mkdir(parents=True, exist_ok=True)
        if staged.stat().st_dev == self.root.stat().st_dev:
            os.replace(staged, dest)
        else:
            self._copy_across(staged, dest)
        os.chmod(dest, 0o444)
        return key

    @staticmethod
    def _copy_across(staged: Path, dest: Path) -> None:
        tmp = dest.with_name(dest.name + ".part")
        with open(staged, "rb") as src, open(tmp, "wb") as out:
            remaining = os.fstat(src.fileno()).st_size
            while remaining:
                n = os.copy_file_range(src.fileno(), out.fileno(), min(remaining, 1 << 30))
                if n == 0:
                    break
                remaining -= n
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        staged.unlink()

    def locator(self, key: str) -> str:
        return str(self.path_of(key))

    def delete(self, key: str) -> None:
        """Disposal only: the read-only file is made writable for this one purpose, then removed."""
        path = self.path_of(key)
        if not path.exists():
            return
        os.chmod(path, 0o600)
        path.unlink()
        fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        return self.path_of(key).exists()

    def size(self, key: str) -> int:
        return self.path_of(key).stat().st_size

    def iter_keys(self) -> Iterator[tuple[str, int, datetime]]:
        """In the order of the keys, byte by byte, as S3 lists them (the fixity sweep walks them beside
        the records in that order)."""
        yield from self._walk(self.root / "blake3", "blake3/")

    def _walk(self, directory: Path, prefix: str) -> Iterator[tuple[str, int, datetime]]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        # a folder's keys go on with "/", so it sorts by its name and "/" among the files
        for entry in sorted(entries, key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name):
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), f"{prefix}{entry.name}/")
            elif not entry.name.endswith(".part"):  # a copy in progress, not an object yet
                st = entry.stat()
                yield (prefix + entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def iter_range(self, key: str, start: int = 0, end: int | None = None, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        with open(self.path_of(key), "rb") as f:
            f.seek(start)
            remaining = (end + 1 - start) if end is not None else None
            while remaining is None or remaining > 0:
                data = f.read(chunk if remaining is None else min(chunk, remaining))
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data
