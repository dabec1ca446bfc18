"""Content-addressed storage on local disk and on a real S3-speaking server (moto)."""

from __future__ import annotations

import os
import stat

import boto3
import pytest

from custodia_wire import fingerprint
from evidence_server.storage.base import object_key
from evidence_server.storage.local import LocalStore
from evidence_server.storage.s3 import S3Store
from tests.server.test_station_flow import FILES, Station
from tests.support.live import LiveServer


def staged(tmp_path, data: bytes, name: str = "x.part"):
    p = tmp_path / name
    p.write_bytes(data)
    return p, fingerprint.of_bytes(data)


def test_local_store_is_content_addressed_read_only_and_idempotent(tmp_path) -> None:
    store = LocalStore(tmp_path / "objects")
    data = os.urandom(3000)
    path, fp = staged(tmp_path, data)
    key = store.put_verified(path, fp.blake3_hex, fp.sha256_hex, fp.size)
    assert key == object_key(fp.blake3_hex) and not path.exists()
    stored = store.path_of(key)
    assert stored.read_bytes() == data
    assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    again, _ = staged(tmp_path, data, "y.part")
    assert store.put_verified(again, fp.blake3_hex, fp.sha256_hex, fp.size) == key and not again.exists()
    assert b"".join(store.iter_range(key, 10, 19)) == data[10:20]
    with pytest.raises(ValueError):
        store.path_of("../../etc/passwd")


@pytest.mark.s3
def test_s3_store_with_object_lock(tmp_path, moto_s3: str, s3_bucket: str) -> None:
    client = boto3.client(
        "s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    store = S3Store(client, s3_bucket, lock_mode="GOVERNANCE", lock_days=30)
    data = os.urandom(5000)
    path, fp = staged(tmp_path, data)
    key = store.put_verified(path, fp.blake3_hex, fp.sha256_hex, fp.size)
    head = store.head(key)
    assert head["ContentLength"] == 5000
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    assert head["Metadata"]["blake3"] == fp.blake3_hex
    assert b"".join(store.iter_range(key)) == data
    assert b"".join(store.iter_range(key, 100, 199)) == data[100:200]
    again, _ = staged(tmp_path, data, "again.part")
    store.put_verified(again, fp.blake3_hex, fp.sha256_hex, fp.size)
    versions = client.list_object_versions(Bucket=s3_bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1  # the same bytes are never stored twice


@pytest.mark.s3
def test_transfer_to_s3_backend_end_to_end(tmp_path, sqlite_url: str, moto_s3: str, s3_bucket: str) -> None:
    server = LiveServer(
        data_dir=tmp_path / "server",
        database_url=sqlite_url,
        env={
            "CUSTODIA_STORAGE_BACKEND": "s3",
            "CUSTODIA_S3_ENDPOINT_URL": moto_s3,
            "CUSTODIA_S3_BUCKET": s3_bucket,
            "CUSTODIA_S3_ACCESS_KEY_ID": "test",
            "CUSTODIA_S3_SECRET_ACCESS_KEY": "test",
            "CUSTODIA_S3_OBJECT_LOCK_MODE": "COMPLIANCE",
        },
    )
    server.data_dir.mkdir(parents=True)
    server.bootstrap()
    server.start()
    try:
        st = Station(server)
        st.open(FILES)
        for path, data in FILES.items():
            assert st.upload(path, data).headers["Custodia-Verified"] == "true"
        assert st.complete(FILES)["missing"] == []
        client = boto3.client(
            "s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
        assert sorted(keys) == sorted(object_key(fingerprint.of_bytes(d).blake3_hex) for d in FILES.values())
        assert client.head_object(Bucket=s3_bucket, Key=keys[0])["ObjectLockMode"] == "COMPLIANCE"
        rec = server.get("/api/v1/recordings").json()["items"][0]
        body = server.get(f"/api/v1/recordings/{rec['id']}/content", headers={"Range": "bytes=0-99"})
        assert body.status_code == 206 and body.content == FILES[rec["original_path"]][:100]
        assert not list((server.data_dir / "staging").glob("*.part"))
    finally:
        server.stop()
