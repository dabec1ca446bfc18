"""The device administrator's connection file from the CLI works with an independent Swift client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from swiftclient.client import Connection

from tests.support.live import LiveServer


def test_cli_connection_file_authenticates(live_server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "bws.json"
    subprocess.run(
        [sys.executable, "-m", "custodia_cli.main", "push", "connection-file", "--name", "bws-east", "--unit", "U1"]
        + ["--url", live_server.url, "--out", str(out)],
        env={**os.environ, **live_server.settings_env()},
        check=True,
        capture_output=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert out.stat().st_mode & 0o777 == 0o600
    conn_file = json.loads(out.read_text())
    assert conn_file["ConnectionFileVersion"] == "1.0" and conn_file["AuthenticationTokenURI"] == [
        live_server.url + "/auth/v1.0"
    ]
    conn = Connection(
        authurl=conn_file["AuthenticationTokenURI"][0],
        user=conn_file["BlobAPIUserName"],
        key=conn_file["BlobAPIKey"],
        auth_version="1",
        retries=0,
    )
    url, token = conn.get_auth()
    assert url == f"{live_server.url}/v1/AUTH_{conn_file['BlobAPIUserName']}" and token
