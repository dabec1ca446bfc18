"""WORM storage for retention: S3 Object Lock on moto's S3 server, and the local store's read-only files.

moto answers GetObjectRetention with an error, so the lock is read back with head_object.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from custodia_wire import fingerprint
from evidence_server.storage.base import ObjectLockedError
from evidence_server.storage.local import LocalStore
from evidence_server.storage.s3 import S3Store

pytestmark = pytest.mark.s3


def client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def put(store, tmp_path: Path, data: bytes) -> str:  # type: ignore[no-untyped-def]
    fp = fingerprint.of_bytes(data)
    staged = tmp_path / f"staged-{fp.blake3_hex[:8]}"
    staged.write_bytes(data)
    return str(store.put_verified(staged, fp.blake3_hex, fp.sha256_hex, fp.size))


def at_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@pytest.mark.parametrize("mode", ["COMPLIANCE", "GOVERNANCE"])
def test_objects_get_the_policys_retain_until_and_extending_updates_the_object(
    tmp_path: Path, moto_s3: str, s3_bucket: str, mode: str
) -> None:
    store = S3Store(client(moto_s3), s3_bucket, lock_mode=mode, lock_days=180)
    key = put(store, tmp_path, f"evidence {mode}".encode())
    first = store.lock_of(key)
    assert first is not None and first.mode == mode and not first.legal_hold
    until = at_second(datetime.now(UTC) + timedelta(days=3 * 365))
    assert store.set_retention(key, until)
    lock = store.lock_of(key)
    assert lock is not None and lock.mode == mode and lock.until == until
    # a lock is never moved earlier
    assert store.set_retention(key, until - timedelta(days=30))
    assert store.lock_of(key).until == until  # type: ignore[union-attr]
    later = until + timedelta(days=365)
    store.set_retention(key, later)
    assert client(moto_s3).head_object(Bucket=s3_bucket, Key=key)["ObjectLockRetainUntilDate"] == later


def test_a_legal_hold_maps_to_the_s3_legal_hold(tmp_path: Path, moto_s3: str, s3_bucket: str) -> None:
    store = S3Store(client(moto_s3), s3_bucket, lock_mode="GOVERNANCE")
    key = put(store, tmp_path, b"held evidence")
    assert store.set_legal_hold(key, True)
    assert client(moto_s3).head_object(Bucket=s3_bucket, Key=key)["ObjectLockLegalHoldStatus"] == "ON"
    assert store.lock_of(key).legal_hold  # type: ignore[union-attr]
    assert store.set_legal_hold(key, False)
    assert client(moto_s3).head_object(Bucket=s3_bucket, Key=key)["ObjectLockLegalHoldStatus"] == "OFF"


def test_locked_objects_cannot_be_deleted_and_governance_is_bypassed_only_when_allowed(
    tmp_path: Path, moto_s3: str, s3_bucket: str
) -> None:
    strict = S3Store(client(moto_s3), s3_bucket, lock_mode="GOVERNANCE", bypass_governance=False)
    key = put(strict, tmp_path, b"governed evidence")
    with pytest.raises(ObjectLockedError):
        strict.delete(key)
    assert strict.exists(key)
    allowed = S3Store(client(moto_s3), s3_bucket, lock_mode="GOVERNANCE", bypass_governance=True)
    allowed.delete(key)
    versions = client(moto_s3).list_object_versions(Bucket=s3_bucket, Prefix=key)
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")  # the bytes are gone, not hidden
    allowed.delete(key)  # already gone: not an error


def test_an_expired_lock_lets_disposal_remove_every_version(tmp_path: Path, moto_s3: str, s3_bucket: str) -> None:
    store = S3Store(client(moto_s3), s3_bucket, lock_mode="COMPLIANCE", lock_days=0)
    key = put(store, tmp_path, b"expired lock")
    store.delete(key)
    assert not store.exists(key)


def test_the_local_store_keeps_files_read_only_and_deletes_only_for_disposal(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    key = put(store, tmp_path, b"local evidence")
    path = store.path_of(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    if os.geteuid() != 0:  # root writes through any mode bits
        with pytest.raises(PermissionError):
            path.open("ab")
    assert not store.set_retention(key, datetime.now(UTC)) and not store.set_legal_hold(key, True)
    assert store.lock_of(key) is None
    store.delete(key)
    assert not path.exists() and not store.exists(key)
    store.delete(key)
