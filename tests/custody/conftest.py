"""A live server on SQLite or PostgreSQL with its objects on local disk or moto's S3, a docs-based station
client, and the hand of an unlucky disk: one byte of a stored object flipped where it lies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import text

from custodia_wire import documents, fingerprint
from evidence_server.context import ServerContext
from evidence_server.storage import object_key
from tests.server.test_station_flow import Station
from tests.support.live import LiveServer, free_port

MIB = 1024 * 1024


@dataclass
class Site:
    server: LiveServer
    store_kind: str
    s3: Any = None
    bucket: str | None = None

    def ctx(self) -> ServerContext:
        return ServerContext(self.server.settings())

    def sql(self, query: str, **params: Any) -> list[Any]:
        ctx = self.ctx()
        try:
            with ctx.engine.begin() as conn:
                result = conn.execute(text(query), params)
                return list(result) if result.returns_rows else []
        finally:
            ctx.close()

    def stored(self, data: bytes) -> bytes:
        key = object_key(fingerprint.of_bytes(data).blake3_hex)
        if self.store_kind == "s3":
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return (self.server.settings().storage_dir / key).read_bytes()

    def flip(self, data: bytes, offset: int) -> None:
        """An unlucky disk: one byte of the stored object changes, its length stays."""
        key = object_key(fingerprint.of_bytes(data).blake3_hex)
        bad = bytearray(self.stored(data))
        bad[offset] ^= 0x01
        if self.store_kind == "s3":
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(bad))
        else:
            path = self.server.settings().storage_dir / key
            path.chmod(0o644)
            path.write_bytes(bytes(bad))

    def state(self, recording_id: int) -> str:
        return str(self.sql("SELECT fixity_state FROM recordings WHERE id = :i", i=recording_id)[0][0])

    def set_state(self, recording_id: int, state: str) -> None:
        """As if nobody had noticed yet: each reader must find the damage by reading."""
        self.sql("UPDATE recordings SET fixity_state = :s WHERE id = :i", s=state, i=recording_id)

    def incidents(self, recording_id: int) -> list[dict[str, Any]]:
        rows = self.server.get("/api/v1/audit/entries", params={"action": "recording.damaged", "limit": 500}).json()
        return [e["details"] for e in rows["items"] if e["object"]["id"] == str(recording_id)]

    def audit(self, action: str) -> list[dict[str, Any]]:
        return list(self.server.get("/api/v1/audit/entries", params={"action": action, "limit": 500}).json()["items"])


def _s3_env(moto: str, bucket: str) -> dict[str, str]:
    return {
        "CUSTODIA_STORAGE_BACKEND": "s3",
        "CUSTODIA_S3_ENDPOINT_URL": moto,
        "CUSTODIA_S3_BUCKET": bucket,
        "CUSTODIA_S3_ACCESS_KEY_ID": "test",
        "CUSTODIA_S3_SECRET_ACCESS_KEY": "test",
    }


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def site(request: pytest.FixtureRequest, tmp_path: Any, database_url: str) -> Iterator[Site]:
    env: dict[str, str] = {}
    s3, bucket = None, None
    if request.param == "s3":
        moto, bucket = request.getfixturevalue("moto_s3"), request.getfixturevalue("s3_bucket")
        env = _s3_env(moto, bucket)
        s3 = boto3.client(
            "s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
    server = LiveServer(data_dir=tmp_path / "server", database_url=database_url, env=env, port=free_port())
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.bootstrap()
    server.start()
    try:
        yield Site(server, request.param, s3, bucket)
    finally:
        server.stop()


class Dock(Station):
    """The docs-based station client, with raw answers for the calls a test expects to be refused."""

    def open_raw(self, files: dict[str, bytes], serial: str, transfer_id: str | None = None) -> httpx.Response:
        self.transfer_id = transfer_id or str(uuid.uuid4())
        self.serial = serial
        return self.http.post(
            "/api/v1/transfers",
            json={
                "transfer_id": self.transfer_id,
                "docked_at": "2026-11-21T10:00:00Z",
                "device": {"serial": serial, "family": "folder"},
                "officer": {"number": "102345", "name": "张三"},
                "index": [{"path": p, "size": len(d), "mtime": "2026-11-21T09:00:00Z"} for p, d in files.items()],
            },
        )

    def complete_raw(self, named: dict[str, bytes]) -> dict[str, Any]:
        """Complete with a manifest naming ``named`` (path → the bytes whose fingerprints it claims)."""
        return self.complete(named)

    def confirmed(self, out: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return documents.confirmed_files(out["receipt"], self.key)

    def deliver(self, files: dict[str, bytes], serial: str) -> dict[str, Any]:
        """A whole dock: open, upload what is not held, complete; the completion's answer."""
        opened = self.open(files, serial=serial)
        held = {h["path"] for h in opened["already_held"]}
        for path, data in files.items():
            if path not in held:
                r = self.upload(path, data)
                assert r.status_code == 204 and r.headers["Custodia-Verified"] == "true", r.text
        return self.complete(files)


def recording_id(server: LiveServer, data: bytes) -> int:
    b3 = fingerprint.of_bytes(data).blake3
    items = server.get("/api/v1/recordings", params={"limit": 500}).json()["items"]
    return int(next(r["id"] for r in items if r["blake3"] == b3))
