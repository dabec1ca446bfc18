"""The first README command: ``custodia up`` runs everything and has footage to look at."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port


@pytest.mark.ffmpeg
@pytest.mark.slow
def test_up_serves_the_demo_recorder_footage(tmp_path: Path, ffmpeg: None) -> None:
    port = free_port()
    exe = Path(sys.executable).parent / "custodia"
    proc = subprocess.Popen(
        [str(exe), "up", "--data-dir", str(tmp_path / "var"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        banner = ""
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while "Stop with Ctrl-C" not in banner and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner += line
        passwords = dict(re.findall(r"Log in as (\w+) with password (\S+)", banner))
        assert set(passwords) == {"admin", "officer"}, banner
        url = f"http://127.0.0.1:{port}"
        assert url in banner

        token = httpx.post(
            url + "/api/v1/auth/login", json={"username": "admin", "password": passwords["admin"]}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        # who was given which role at the first start is in the log, as an administrator's creation of a user is
        made = httpx.get(url + "/api/v1/audit/entries", params={"action": "user.created"}, headers=headers).json()
        assert sorted((e["details"]["username"], e["details"]["role"]) for e in made["items"]) == [
            ("admin", "sysadmin"),
            ("officer", "officer"),
        ], made
        items: list[dict] = []
        while time.monotonic() < deadline:
            items = httpx.get(url + "/api/v1/recordings", headers=headers).json()["items"]
            if len(items) == 4 and all(i["probe_state"] == "done" for i in items):
                break
            time.sleep(0.5)
        assert len(items) == 4, items
        assert {i["device_serial"] for i in items} == {"DSJ0001"}
        assert all(i["codec"] == "h264" and i["duration_s"] > 4 for i in items)
        page = httpx.get(url + "/login")
        assert page.status_code == 200 and "登录" in page.text
        assert "{dock}" not in banner
        settings_file = Path(re.findall(r"Settings: (\S+custodia\.env)", banner)[0])
        assert settings_file == tmp_path / "var" / "custodia.env"

        # the README's second recorder, exactly as written there: every segment arrives
        dock = tmp_path / "var" / "dock"
        run = subprocess.run(
            [str(exe), "simulate-device", str(dock), "--serial", "DSJ0002"], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        written = len([ln for ln in run.stdout.splitlines() if ln[:4].isdigit()])
        while time.monotonic() < deadline + 60:
            got = httpx.get(url + "/api/v1/recordings", params={"device_serial": "DSJ0002"}, headers=headers).json()
            if got["total"] == written:
                break
            time.sleep(0.5)
        assert got["total"] == written == 3

        # the admin commands find what `up` made, through the settings file it printed
        run = subprocess.run(
            [str(exe), "--settings", str(settings_file), "admin", "set-password", "admin"],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
        new_password = json.loads(run.stdout)["password"]
        login = httpx.post(url + "/api/v1/auth/login", json={"username": "admin", "password": new_password})
        assert login.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0
    log = proc.stdout.read() if proc.stdout else ""
    # output to a pipe, not a terminal: one line per file and per dock, no HTTP request lines
    assert re.search(r"dock DSJ0002 \(102345.*\): file 3/3 done", log), log[-3000:]
    assert "HTTP Request" not in log
