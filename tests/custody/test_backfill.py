"""Recordings stored before block maps: the backfill task makes each map from verified bytes and binds its
root in the log; a damaged one gets no map but an incident; the stores compare digests, never sizes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from custodia_wire import fingerprint
from evidence_server.background.registry import discover
from evidence_server.recordings.models import Recording, RecordingBlockMap
from evidence_server.storage.local import LocalStore
from evidence_server.storage.s3 import S3Store
from tests.cases.conftest import World, make_world
from tests.support.damage import flipped


@pytest.fixture
def old_site(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, database_url)


def test_the_backfill_maps_old_recordings_from_verified_bytes_only(old_site: World) -> None:
    w = old_site
    good, bad = w.recording(os.urandom(3_000_000)), w.recording(os.urandom(70_000))
    with w.session() as s:
        path = w.ctx.store.path_of(s.get(Recording, bad).storage_key)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(flipped(path.read_bytes()))

    report = discover()["custody.backfill_block_maps"].fn(w.ctx)
    assert report == {"made": [good], "damaged": [bad]}
    with w.session() as s:
        row = s.get(RecordingBlockMap, good)
        assert row is not None and row.source == "backfill" and s.get(Recording, good).block_map_root == row.root
        assert s.get(RecordingBlockMap, bad) is None and s.get(Recording, bad).fixity_state == "failed"
    logged = w.get("auditor", "/api/v1/audit/entries", params={"action": "recording.block_map"}).json()["items"]
    assert [(e["object"]["id"], e["details"]["block_map_root"]) for e in logged] == [(str(good), row.root)]
    assert discover()["custody.backfill_block_maps"].fn(w.ctx) == {"made": [], "damaged": []}  # idempotent
    r = w.get("handler", f"/api/v1/recordings/{good}/content", headers={"Range": "bytes=2000000-2000009"})
    assert r.status_code == 206 and len(r.content) == 10


def _stores(tmp_path: Path, request: pytest.FixtureRequest) -> list[object]:
    stores: list[object] = [LocalStore(tmp_path / "objects")]
    if request.node.get_closest_marker("s3"):
        moto, bucket = request.getfixturevalue("moto_s3"), request.getfixturevalue("s3_bucket")
        client = boto3.client(
            "s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        stores = [S3Store(client, bucket, lock_mode="GOVERNANCE")]
    return stores


@pytest.mark.parametrize("kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_put_verified_replaces_a_damaged_object_of_the_same_size(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = _stores(tmp_path, request)[0]
    data = os.urandom(100_000)
    fp = fingerprint.of_bytes(data)
    staged = tmp_path / "a.part"
    staged.write_bytes(data)
    key = store.put_verified(staged, fp.blake3_hex, fp.sha256_hex, fp.size)  # type: ignore[attr-defined]
    damaged = flipped(data)
    if kind == "s3":
        store.client.put_object(Bucket=store.bucket, Key=key, Body=damaged)  # type: ignore[attr-defined]
    else:
        path = store.path_of(key)  # type: ignore[attr-defined]
        path.chmod(0o644)
        path.write_bytes(damaged)
    assert not store.holds(key, fp.blake3_hex, fp.sha256_hex, fp.size)  # type: ignore[attr-defined]
    staged.write_bytes(data)
    store.put_verified(staged, fp.blake3_hex, fp.sha256_hex, fp.size)  # type: ignore[attr-defined]
    assert b"".join(store.iter_range(key)) == data  # type: ignore[attr-defined]
    assert store.holds(key, fp.blake3_hex, fp.sha256_hex, fp.size)  # type: ignore[attr-defined]
