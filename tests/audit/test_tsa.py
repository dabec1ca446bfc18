"""Checkpoints time-stamped by an RFC 3161 authority (a real ``openssl ts`` TSA made for the test)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from evidence_server.audit import tsa
from evidence_server.audit.log import issue_checkpoint
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from tests.audit.conftest import append
from tests.audit.tsa_server import OpensslTSA
from tests.support import services


@pytest.fixture
def openssl_tsa(tmp_path: Path) -> Iterator[OpensslTSA]:
    services.require_tool("openssl")
    root = tmp_path / "tsa"
    root.mkdir()
    authority = OpensslTSA(root)
    yield authority
    authority.close()


def test_checkpoints_carry_a_time_stamp_openssl_verifies(
    openssl_tsa: OpensslTSA, tmp_path: Path, sqlite_url: str
) -> None:
    ctx = ServerContext(
        Settings(
            data_dir=tmp_path / "server", database_url=sqlite_url, environment="test", audit_tsa_url=openssl_tsa.url
        )
    )
    append(ctx, 3)
    with ctx.sessionmaker() as s:
        cp, created = issue_checkpoint(ctx, s)
    ctx.close()
    assert created and cp.tsa_token and cp.tsa_url == openssl_tsa.url
    assert cp.tsa_time is not None and abs(cp.tsa_time - utcnow()) < timedelta(minutes=1)
    note, token = tmp_path / "checkpoint.txt", tmp_path / "checkpoint.tst"
    note.write_text(cp.note, "utf-8")
    token.write_bytes(cp.tsa_token)
    ok = openssl_tsa.verify(note, token)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    note.write_text(cp.note.replace("\n3\n", "\n4\n"), "utf-8")  # a different checkpoint: not this token's
    assert openssl_tsa.verify(note, token).returncode != 0


def test_a_token_for_other_bytes_or_without_our_nonce_is_refused(openssl_tsa: OpensslTSA) -> None:
    token, _ = tsa.timestamp(openssl_tsa.url, b"checkpoint")
    assert token[:1] == b"\x30"
    import hashlib

    import httpx

    digest = hashlib.sha256(b"checkpoint").digest()
    reply = httpx.post(openssl_tsa.url, content=tsa.request_der(digest, 1234)).content
    assert tsa.parse_response(reply, digest, 1234)[0]
    with pytest.raises(tsa.TimestampError, match="other bytes"):
        tsa.parse_response(reply, hashlib.sha256(b"something else").digest(), 1234)
    with pytest.raises(tsa.TimestampError, match="nonce"):
        tsa.parse_response(reply, digest, 999)


def test_an_unreachable_tsa_does_not_stop_checkpoints(tmp_path: Path, sqlite_url: str) -> None:
    from tests.support.live import free_port

    ctx = ServerContext(
        Settings(
            data_dir=tmp_path / "server",
            database_url=sqlite_url,
            environment="test",
            audit_tsa_url=f"http://127.0.0.1:{free_port()}/tsa",
            audit_tsa_timeout_s=2,
        )
    )
    append(ctx, 1)
    with ctx.sessionmaker() as s:
        cp, created = issue_checkpoint(ctx, s)
    ctx.close()
    assert created and cp.tsa_token is None
