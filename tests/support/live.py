"""A real Custodia server for end-to-end tests: uvicorn on a free loopback port.

``thread`` mode runs uvicorn in a thread of the test process (fast); ``process`` mode runs
``custodia server`` as a child process so a test can kill it with SIGKILL mid-upload and start it
again on the same data. Both use the embedded server's limits (evidence_server/serving.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_PASSWORD = "test-admin-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready after {timeout}s")


@dataclass
class LiveServer:
    data_dir: Path
    database_url: str
    mode: str = "thread"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    _thread: threading.Thread | None = None
    _server: Any = None
    _proc: subprocess.Popen[bytes] | None = None
    _admin_token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings_env(self) -> dict[str, str]:
        return {
            "CUSTODIA_DATA_DIR": str(self.data_dir),
            "CUSTODIA_DATABASE_URL": self.database_url,
            "CUSTODIA_ENVIRONMENT": "test",
            "CUSTODIA_COOKIE_SECURE": "false",
            **self.env,
        }

    def settings(self):  # type: ignore[no-untyped-def]
        from evidence_server.config import Settings

        return Settings(**{k.removeprefix("CUSTODIA_").lower(): v for k, v in self.settings_env().items()})

    def bootstrap(self) -> None:
        """One unit (U1) and a sysadmin ``admin`` with a known test password."""
        from evidence_server.accounts import service as accounts
        from evidence_server.context import ServerContext

        ctx = ServerContext(self.settings())
        with ctx.sessionmaker() as session:
            unit = accounts.ensure_unit(session, "U1", "第一执法大队")
            accounts.create_user(session, username="admin", password=ADMIN_PASSWORD, role="sysadmin", unit=unit)
            session.commit()
        ctx.close()

    def start(self) -> LiveServer:
        if self.mode == "thread":
            import uvicorn

            from evidence_server.app import create_app
            from evidence_server.serving import uvicorn_options

            settings = self.settings()
            config = uvicorn.Config(
                create_app(settings),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                **uvicorn_options(settings),
            )
            self._server = uvicorn.Server(config)
            self._server.install_signal_handlers = lambda: None
            self._thread = threading.Thread(target=self._server.run, daemon=True)
            self._thread.start()
            wait_ready(self.url)
        else:
            env = {**os.environ, **self.settings_env()}
            self._proc = subprocess.Popen(
                # as production runs it: `custodia server`, with the embedded server's limits
                [sys.executable, "-m", "custodia_cli.main", "server", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
            wait_ready(self.url, proc=self._proc)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the server process: no cleanup, as in a power cut."""
        assert self._proc is not None, "kill() needs mode='process'"
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- conveniences for tests -------------------------------------------------------------

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        r = httpx.post(self.url + "/api/v1/auth/login", json={"username": username, "password": password})
        r.raise_for_status()
        return str(r.json()["token"])

    @property
    def admin_headers(self) -> dict[str, str]:
        if self._admin_token is None:
            self._admin_token = self.login()
        return {"Authorization": f"Bearer {self._admin_token}"}

    def enrolment_code(self, name: str = "station-1", unit_id: int = 1) -> str:
        r = httpx.post(
            self.url + "/api/v1/stations", json={"name": name, "unit_id": unit_id}, headers=self.admin_headers
        )
        r.raise_for_status()
        return str(r.json()["enrolment_code"])

    def create_user(self, username: str, role: str, unit_id: int = 1, officer_no: str | None = None) -> str:
        """Create a user through the API and return a login token for it."""
        password = f"{username}-password-123"
        r = httpx.post(
            self.url + "/api/v1/users",
            headers=self.admin_headers,
            json={
                "username": username,
                "password": password,
                "role": role,
                "unit_id": unit_id,
                "officer_no": officer_no,
            },
        )
        r.raise_for_status()
        return self.login(username, password)

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else self.admin_headers
        return httpx.get(self.url + path, headers={**headers, **kw.pop("headers", {})}, **kw)
