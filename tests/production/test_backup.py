"""Backup and restore: database, object store and keys; afterwards the audit log and fixity hold.

Run for the embedded profile (SQLite, local disk) and the production one (PostgreSQL, S3 with
Object Lock), through the real ``custodia backup`` commands, into a new empty database and store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from custodia_wire import fingerprint
from evidence_server.audit.log import issue_checkpoint
from evidence_server.backup.database import BackupError
from evidence_server.backup.service import create_backup
from evidence_server.context import ServerContext
from evidence_server.recordings.models import Recording
from tests.production.conftest import new_bucket
from tests.server.test_station_flow import FILES, Station
from tests.support.live import LiveServer

CLI = [sys.executable, "-m", "custodia_cli.main"]


@dataclass
class Profile:
    database_url: str
    env: dict[str, str]

    def environ(self, data_dir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "CUSTODIA_ENVIRONMENT": "test",
            "CUSTODIA_DATA_DIR": str(data_dir),
            "CUSTODIA_DATABASE_URL": self.database_url,
            **self.env,
        }


def _profile(kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> Profile:
    if kind in ("embedded", "embedded-sm2"):
        env = {"CUSTODIA_SIGNING_ALG": "SM2"} if kind == "embedded-sm2" else {}  # a server signing with SM2
        if name == "source":
            return Profile(request.getfixturevalue("sqlite_templates").fresh(tmp_path / "db-source"), env)
        return Profile(f"sqlite:///{tmp_path / f'db-{name}' / 'custodia.sqlite3'}", env)  # none yet
    endpoint = request.getfixturevalue("moto_s3")
    url = (
        request.getfixturevalue("postgres_templates").fresh()
        if name == "source"
        else request.getfixturevalue("empty_pg_url")
    )
    return Profile(
        url,
        {
            "CUSTODIA_STORAGE_BACKEND": "s3",
            "CUSTODIA_S3_ENDPOINT_URL": endpoint,
            "CUSTODIA_S3_BUCKET": new_bucket(endpoint),
            "CUSTODIA_S3_ACCESS_KEY_ID": "test",
            "CUSTODIA_S3_SECRET_ACCESS_KEY": "test",
            "CUSTODIA_S3_OBJECT_LOCK_MODE": "GOVERNANCE",
        },
    )


def _populate(tmp_path: Path, source: Profile) -> LiveServer:
    server = LiveServer(data_dir=tmp_path / "source", database_url=source.database_url, env=source.env)
    server.data_dir.mkdir(parents=True)
    server.bootstrap()
    server.start()
    try:
        st = Station(server)
        st.open(FILES)
        for path, data in FILES.items():
            assert st.upload(path, data).status_code == 204
        assert len(st.complete(FILES)["receipt"]["files"]) == len(FILES)
        ctx = ServerContext(server.settings())
        with ctx.sessionmaker() as session:
            issue_checkpoint(ctx, session)  # a signed checkpoint the restored log must still match
        ctx.close()
    finally:
        server.stop()
    return server


@pytest.mark.parametrize(
    "kind", ["embedded", "embedded-sm2", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.s3])]
)
def test_backup_then_restore_into_an_empty_system(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source = _profile(kind, request, tmp_path, "source")
    server = _populate(tmp_path, source)
    backup = tmp_path / "backup"
    made = subprocess.run(
        [*CLI, "backup", "create", str(backup)],
        env=source.environ(server.data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["objects"]["count"] == len(FILES) and manifest["recordings"] == len(FILES)
    assert oct((backup / "keys" / "server-ed25519.pem").stat().st_mode & 0o777) == "0o600"
    if kind == "embedded-sm2":  # the SM2 key that signed its receipts and checkpoints is kept too
        assert oct((backup / "keys" / "server-sm2.pem").stat().st_mode & 0o777) == "0o600"

    target = _profile(kind, request, tmp_path, "target")
    target_dir = tmp_path / "restored"
    done = subprocess.run(
        [*CLI, "backup", "restore", str(backup)],
        env=target.environ(target_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check = json.loads(done.stdout[done.stdout.index("{") :])
    assert check["ok"] and check["audit_ok"] and check["recordings"] == len(FILES)
    assert check["fixity_ok"] == len(FILES) and check["audit_checkpoints"] >= 1
    verify = subprocess.run(
        [*CLI, "audit", "verify"], env=target.environ(target_dir), capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout + verify.stderr

    restored = LiveServer(data_dir=target_dir, database_url=target.database_url, env=target.env)
    ctx = ServerContext(restored.settings())
    try:
        assert ctx.key_id == manifest["keys"]["key_id"]  # receipts issued before still verify
        with ctx.sessionmaker() as session:
            recs = session.query(Recording).all()
        for rec in recs:
            got = fingerprint.of_bytes(b"".join(ctx.store.iter_range(rec.storage_key)))
            assert (got.blake3, got.sha256, got.size) == (rec.blake3, rec.sha256, rec.size)
        assert {r.original_path for r in recs} == set(FILES)
    finally:
        ctx.close()
    assert not any((target_dir / "staging").rglob("*.part")) and not any((target_dir / "staging" / "restore").iterdir())
    if kind == "production":
        assert not (target_dir / "objects").exists()  # objects went to S3, no local copy


def test_a_damaged_backup_is_refused(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source = _profile("embedded", request, tmp_path, "source")
    server = _populate(tmp_path, source)
    backup = tmp_path / "backup"
    create_backup(server.settings(), backup)
    victim = next(p for p in (backup / "objects").rglob("*") if p.is_file())
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))
    target = _profile("embedded", request, tmp_path, "target")
    done = subprocess.run(
        [*CLI, "backup", "restore", str(backup)],
        env=target.environ(tmp_path / "restored"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "does not match its fingerprints" in done.stderr


def test_restore_never_merges_into_a_database_in_use(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from evidence_server.backup.service import restore_backup

    source = _profile("embedded", request, tmp_path, "source")
    server = _populate(tmp_path, source)
    create_backup(server.settings(), tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(server.settings(), tmp_path / "backup")
