"""Any S3 endpoint through boto3 (AWS, MinIO, Ceph, OSS); Object Lock when the bucket has it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from evidence_server.config import Settings
from evidence_server.db import utcnow
from evidence_server.storage.base import (
    DERIVED_PREFIX,
    ObjectLock,
    ObjectLockedError,
    ObjectMissingError,
    ObjectStore,
    object_key,
)

_TRANSFER = TransferConfig(
    multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024, max_concurrency=4
)


class S3Store(ObjectStore):
    def __init__(
        self,
        client: Any,
        bucket: str,
        lock_mode: str | None = None,
        lock_days: int = 180,
        bypass_governance: bool = False,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.lock_mode = lock_mode
        self.lock_days = lock_days
        #: an approved disposal may delete a GOVERNANCE-locked object before its date (never a COMPLIANCE one)
        self.bypass_governance = bypass_governance
        self._bucket_locks: bool | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
        )
        return cls(
            client,
            settings.s3_bucket,
            settings.s3_object_lock_mode,
            settings.s3_object_lock_days,
            bypass_governance=settings.retention_bypass_governance,
        )

    def bucket_has_object_lock(self) -> bool:
        if self._bucket_locks is None:
            try:
                conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
                self._bucket_locks = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError:
                self._bucket_locks = False
        return self._bucket_locks

    def put_verified(self, staged: Path, blake3_hex: str, sha256_hex: str, size: int) -> str:
        key = object_key(blake3_hex)
        if self.holds(key, blake3_hex, sha256_hex, size):
            staged.unlink(missing_ok=True)
            return key
        extra: dict[str, Any] = {
            "Metadata": {"blake3": blake3_hex, "sha256": sha256_hex},
            "ChecksumAlgorithm": "SHA256",
        }
        if size < _TRANSFER.multipart_threshold:
            # single PUT: S3 itself checks the SHA-256 we computed while receiving
            extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        if self.lock_mode and self.bucket_has_object_lock():
            extra["ObjectLockMode"] = self.lock_mode
            extra["ObjectLockRetainUntilDate"] = utcnow() + timedelta(days=self.lock_days)
        if "ChecksumSHA256" in extra:
            with open(staged, "rb") as body:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        else:
            self.client.upload_file(str(staged), self.bucket, key, ExtraArgs=extra, Config=_TRANSFER)
        staged.unlink(missing_ok=True)
        return key

    def put_derived(self, staged: Path, key: str) -> str:
        if not key.startswith(DERIVED_PREFIX):
            raise ValueError(f"not a derived key: {key!r}")
        # no Object Lock: a derived file is not evidence and can always be made again
        self.client.upload_file(
            str(staged), self.bucket, key, ExtraArgs={"Metadata": {"derived": "true"}}, Config=_TRANSFER
        )
        staged.unlink(missing_ok=True)
        return key

    def locator(self, key: str) -> str:
        return str(
            self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=3600)
        )

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def size(self, key: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def iter_keys(self) -> Iterator[tuple[str, int, datetime]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="blake3/"):
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj["Size"]), obj["LastModified"]

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.client.head_object(Bucket=self.bucket, Key=key))

    # retention: Object Lock retain-until dates and legal holds (read back with head_object, which every
    # S3 server answers, where GetObjectRetention is not everywhere implemented)

    def lock_of(self, key: str) -> ObjectLock | None:
        if not self.bucket_has_object_lock():
            return None
        head = self.head(key)
        return ObjectLock(
            mode=head.get("ObjectLockMode"),
            until=head.get("ObjectLockRetainUntilDate"),
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )

    def set_retention(self, key: str, until: datetime) -> bool:
        if not (self.lock_mode and self.bucket_has_object_lock()):
            return False
        current = self.lock_of(key)
        if current is not None and current.until is not None and current.until >= until:
            return True  # a lock is only ever moved later
        mode = "COMPLIANCE" if current is not None and current.mode == "COMPLIANCE" else self.lock_mode
        self.client.put_object_retention(
            Bucket=self.bucket, Key=key, Retention={"Mode": mode, "RetainUntilDate": until}
        )
        return True

    def set_legal_hold(self, key: str, on: bool) -> bool:
        if not self.bucket_has_object_lock():
            return False
        self.client.put_object_legal_hold(Bucket=self.bucket, Key=key, LegalHold={"Status": "ON" if on else "OFF"})
        return True

    def delete(self, key: str) -> None:
        """Every version of the object (a delete marker alone would leave the bytes in a versioned bucket)."""
        versions: list[str | None] = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if v["Key"] == key:
                    versions.append(v.get("VersionId"))
        extra: dict[str, Any] = {"BypassGovernanceRetention": True} if self.bypass_governance else {}
        for version in versions or [None]:
            args = {"Bucket": self.bucket, "Key": key, **extra}
            if version is not None:
                args["VersionId"] = version
            try:
                self.client.delete_object(**args)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("AccessDenied", "InvalidRequest", "ObjectLocked"):
                    raise ObjectLockedError(
                        f"the object store refuses to delete {key}: {exc.response.get('Error', {}).get('Message', exc)}"
                    ) from exc
                raise

    def iter_range(self, key: str, start: int = 0, end: int | None = None, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        rng = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, Range=rng)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissingError(key) from exc
            raise
        try:
            yield from body.iter_chunks(chunk)
        finally:
            body.close()
