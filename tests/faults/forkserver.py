"""A fork server for the crash campaigns: imports the agent and the server once, then forks a fresh
child per run, so a campaign can SIGKILL a hundred real processes without paying the imports each
time. The parent never starts a thread, so forking it is safe.

Protocol, one JSON object per line on stdin, one answer per line on stdout:

- ``{"op": "agent", "log": path, "root": path, "settings": {...}, "serial": s, "officer_no": o}``
  → ``{"pid": n}``: a child runs ``main_ingest`` (what ``custodia agent ingest`` runs) with wipe on.
- ``{"op": "server", "log": path, "env": {...}, "port": n}`` → ``{"pid": n}``: a child runs uvicorn
  with ``evidence_server.app:create_app`` on 127.0.0.1:port, settings from ``env``.
- ``{"op": "status", "pid": n}`` → ``{"exit": code}`` once the child ended (negative: its signal),
  else ``{"exit": null}``.

Run as ``python -m tests.faults.forkserver`` from the repository root.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import uvicorn  # noqa: F401  (imported before any fork)

import evidence_server.app  # noqa: F401
import ingest_agent.runner  # noqa: F401


def _child_io(log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def run_agent(cmd: dict[str, Any]) -> int:
    from ingest_agent.config import AgentSettings
    from ingest_agent.runner import main_ingest

    settings = AgentSettings(**cmd["settings"])
    return main_ingest(cmd["root"], settings, serial=cmd["serial"], officer_no=cmd["officer_no"], wipe=True)


def run_server(cmd: dict[str, Any]) -> int:
    os.environ.update(cmd["env"])
    from evidence_server.app import create_app
    from evidence_server.config import Settings
    from evidence_server.serving import uvicorn_options

    settings = Settings()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=int(cmd["port"]),
        log_level="warning",
        lifespan="on",
        **uvicorn_options(settings),  # the embedded server's limits, as production runs it
    )
    uvicorn.Server(config).run()
    return 0


def fork(cmd: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.setpgid(0, 0)
        _child_io(cmd["log"])
        code = run_agent(cmd) if cmd["op"] == "agent" else run_server(cmd)
    except BaseException as exc:  # noqa: BLE001  (a child must never return into the server loop)
        print(f"child failed: {exc!r}", file=sys.stderr, flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return 0  # unreachable


def status(pid: int) -> int | None:
    try:
        done, code = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -999  # reaped already
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(code)


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] in ("agent", "server"):
            answer: dict[str, Any] = {"pid": fork(cmd)}
        elif cmd["op"] == "status":
            answer = {"exit": status(int(cmd["pid"]))}
        else:
            answer = {"error": f"unknown op {cmd['op']!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
