"""A third party checks the audit log with tools of its own: Go's golang.org/x/mod/sumdb (note and tlog).

Written by others and sharing nothing with Custodia, it verifies the signed checkpoint as a C2SP signed
note, reads the server's tiles over HTTP (tlog-tiles paths), checks each tile against the signed root,
and computes and checks an inclusion and a consistency proof itself.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from custodia_wire import auditlog
from evidence_server.audit.service import record
from evidence_server.context import ServerContext
from tests.support import services
from tests.support.live import LiveServer

GO_SOURCE = Path(__file__).parent / "gotlog" / "main.go"
GOPATH = "/usr/share/gocode"  # Debian's golang-golang-x-mod-dev


@pytest.fixture(scope="module")
def gotlog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None or not Path(GOPATH, "src/golang.org/x/mod/sumdb/tlog").is_dir():
        services.missing(
            "Go and golang.org/x/mod are not installed (apt-get install golang-go golang-golang-x-mod-dev)"
        )
    out = tmp_path_factory.mktemp("gotlog") / "gotlog"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOCACHE": str(out.parent / "cache")}
    subprocess.run(["go", "build", "-o", str(out), str(GO_SOURCE)], check=True, env=env, cwd=out.parent)
    return out


def verifier_key(server: LiveServer, ctx: ServerContext) -> str:
    """The signed-note verifier key a reader would be given: <name>+<key hash>+<base64 of 0x01 || key>."""
    origin = ctx.settings.audit_origin
    public = ctx.signing_key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_data = base64.b64encode(b"\x01" + raw).decode()
    return f"{origin}+{auditlog.note_key_id(origin, public).hex()}+{key_data}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def append(ctx: ServerContext, count: int) -> None:
    with ctx.sessionmaker() as s:
        for i in range(count):
            record(s, "recording.view", object_type="recording", object_id=i, details={"n": i})
        s.commit()


def run(
    gotlog: Path, server: LiveServer, key: str, index: int, old: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    token = server.login()
    leaf = server.get(f"/api/v1/audit/entries/{index}", token).json()["leaf_hash"]
    old_root = base64.b64encode(bytes.fromhex(str(old["root_hash"]))).decode()
    return subprocess.run(
        [str(gotlog), server.url, token, key, str(index), leaf, str(old["tree_size"]), old_root],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_go_sumdb_verifies_the_checkpoint_tiles_and_proofs(gotlog: Path, live_server: LiveServer) -> None:
    ctx = ServerContext(live_server.settings())
    try:
        token = live_server.login()
        append(ctx, 300)
        old = httpx.post(f"{live_server.url}/api/v1/audit/checkpoints", headers=auth(token)).json()
        append(ctx, 1_000 - old["tree_size"])  # full tiles of leaves, partial tiles of leaves and above them
        new = httpx.post(f"{live_server.url}/api/v1/audit/checkpoints", headers=auth(token)).json()
        assert new["tree_size"] > 3 * 256
        key = verifier_key(live_server, ctx)
        done = run(gotlog, live_server, key, 700, old)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"OK {ctx.settings.audit_origin}: tree {new['tree_size']}, entry 700")

        # a rewritten tile (as someone with write access to the database could) fails the third party's check
        with ctx.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_tiles_no_update")
            conn.exec_driver_sql("UPDATE audit_tiles SET hashes = zeroblob(8192) WHERE level = 0 AND idx = 2")
        done = run(gotlog, live_server, key, 700, old)
        assert done.returncode != 0 and "FAILED" in done.stderr
    finally:
        ctx.close()
