"""Child processes of the production-profile test: each logs to a file, each is stopped by its own handle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CUSTODIA = [sys.executable, "-m", "custodia_cli.main"]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, as in a crash or a power cut."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@dataclass
class Processes:
    logs: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                argv,
                env={**os.environ, **self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def custodia(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [*CUSTODIA, *args], env)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        r = subprocess.run(
            [*CUSTODIA, *args],
            env={**os.environ, **self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert r.returncode == 0, f"custodia {' '.join(args)}: {r.stdout}\n{r.stderr}"
        return r.stdout

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.procs):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=10)


def wait_http(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s:\n{proc.tail()}")


def wait_for(what: str, check: object, timeout: float, procs: list[Proc] | None = None, every: float = 0.5) -> float:
    """Poll ``check()`` until it returns true; return the seconds it took."""
    started = time.monotonic()
    while True:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            tails = "\n".join(f"--- {p.name}\n{p.tail(1500)}" for p in procs or [])
            raise TimeoutError(f"{what}: not after {timeout}s\n{tails}")
        time.sleep(every)
