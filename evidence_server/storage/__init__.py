"""Where verified recordings live: content-addressed by BLAKE3, on local disk or any S3 endpoint."""

from __future__ import annotations

from evidence_server.config import Settings
from evidence_server.storage.base import ObjectStore, StorageFullError, object_key


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        from evidence_server.storage.s3 import S3Store

        return S3Store.from_settings(settings)
    from evidence_server.storage.local import LocalStore

    assert settings.storage_dir is not None
    return LocalStore(settings.storage_dir)


__all__ = ["ObjectStore", "StorageFullError", "make_store", "object_key"]
