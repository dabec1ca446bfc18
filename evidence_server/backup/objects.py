"""Copying objects out of a store into a backup folder and back, hashing every byte on the way."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire.fingerprint import Fingerprint, Hasher
from evidence_server.backup.database import BackupError
from evidence_server.media.models import DerivedMedia
from evidence_server.recordings.models import Recording
from evidence_server.storage import ObjectStore
from evidence_server.storage.base import DERIVED_PREFIX

CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int
    blake3: str  # "blake3:<hex>"
    sha256: str  # "sha256:<hex>"


def _safe(root: Path, key: str) -> Path:
    path = (root / key).resolve()
    if not path.is_relative_to(root.resolve()) or key.startswith("/"):
        raise BackupError(f"object key escapes the backup: {key!r}")
    return path


class CopyMismatch(BackupError):
    """The bytes read from the store are not the object's fingerprint: nothing of them is kept."""


def _write_hashed(chunks: object, dest: Path, expect: tuple[str | None, str | None] = (None, None)) -> Fingerprint:
    """Write ``chunks`` to ``dest`` (via ``.part``, fsynced) and return both fingerprints.

    With ``expect`` (blake3, sha256), the copy only takes its name if it matches them: a damaged
    object never becomes a backup copy (the ``.part`` is removed and CopyMismatch raised).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = Hasher()
    with open(tmp, "wb") as out:
        for block in chunks:  # type: ignore[attr-defined]
            h.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    got = h.result()
    b3, sha = expect
    if (b3 and got.blake3 != b3) or (sha and got.sha256 != sha):
        tmp.unlink(missing_ok=True)
        raise CopyMismatch(f"{dest.name}: bytes read are not their fingerprint ({got.blake3})")
    os.replace(tmp, dest)
    return got


def _read_file(path: Path) -> object:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def wanted(session: Session, store: ObjectStore) -> dict[str, tuple[str | None, str | None]]:
    """Key → expected (blake3, sha256): every evidence object in the store, and every derived file."""
    keys: dict[str, tuple[str | None, str | None]] = {
        key: (f"blake3:{key.rsplit('/', 1)[-1]}", None) for key, _size, _mtime in store.iter_keys()
    }
    for evidence_key, b3, sha in session.execute(select(Recording.storage_key, Recording.blake3, Recording.sha256)):
        if evidence_key in keys:
            keys[evidence_key] = (b3, sha)
    for derived_key, derived_b3, derived_sha in session.execute(
        select(DerivedMedia.storage_key, DerivedMedia.blake3, DerivedMedia.sha256).where(
            DerivedMedia.storage_key.is_not(None)
        )
    ):
        if derived_key:
            keys[derived_key] = (derived_b3, derived_sha)
    return keys


def back_up(
    store: ObjectStore,
    keys: dict[str, tuple[str | None, str | None]],
    dest: Path,
    previous: dict[str, ObjectEntry],
    damaged: list[str] | None = None,
) -> tuple[list[ObjectEntry], list[str]]:
    """Copy each object (skipping ones a previous backup in ``dest`` holds); return entries and problems.

    Every byte is checked against the object's fingerprint before its copy is kept: a damaged object
    is left out (its key added to ``damaged``, and named in the problems), never backed up as if sound.
    """
    entries, problems = [], []
    for key, (b3, sha) in sorted(keys.items()):
        path = _safe(dest, key)
        old = previous.get(key)
        if old is not None and path.exists() and path.stat().st_size == old.size:
            entries.append(old)  # content-addressed: same key, same bytes
            continue
        if not store.exists(key):
            problems.append(f"{key}: missing from the store")
            continue
        try:
            got = _write_hashed(store.iter_range(key, chunk=CHUNK), path, (b3, sha))
        except CopyMismatch:
            problems.append(f"{key}: bytes in the store do not match their fingerprint; not backed up")
            if damaged is not None:
                damaged.append(key)
            continue
        entries.append(ObjectEntry(key, got.size, got.blake3, got.sha256))
    return entries, problems


def restore(store: ObjectStore, entries: list[ObjectEntry], src: Path, staging: Path) -> int:
    """Put every object of the backup into ``store``, checking each against its entry first."""
    staging.mkdir(parents=True, exist_ok=True)
    for e in entries:
        tmp = staging / f"restore-{e.blake3.split(':')[-1][:32]}"
        got = _write_hashed(_read_file(_safe(src, e.key)), tmp)
        if (got.size, got.blake3, got.sha256) != (e.size, e.blake3, e.sha256):
            tmp.unlink(missing_ok=True)
            raise BackupError(f"{e.key}: the backup copy does not match its fingerprints; restore stopped")
        if e.key.startswith(DERIVED_PREFIX):
            store.put_derived(tmp, e.key)
        else:
            key = store.put_verified(tmp, e.blake3.split(":")[1], e.sha256.split(":")[1], e.size)
            if key != e.key:
                raise BackupError(f"{e.key}: stored as {key}")
        tmp.unlink(missing_ok=True)
    return len(entries)


def save_index(entries: list[ObjectEntry], path: Path) -> None:
    path.write_text(json.dumps([asdict(e) for e in entries], indent=1), "utf-8")


def load_index(path: Path) -> list[ObjectEntry]:
    if not path.exists():
        return []
    return [ObjectEntry(**e) for e in json.loads(path.read_text("utf-8"))]


def remove_stale(dest: Path, keep: set[str]) -> None:
    """Drop objects of an earlier backup in ``dest`` that the store no longer has."""
    if not dest.exists():
        return
    for path in sorted(dest.rglob("*"), reverse=True):
        rel = path.relative_to(dest).as_posix()
        if path.is_file() and rel not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            shutil.rmtree(path)
