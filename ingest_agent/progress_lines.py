"""Progress for logs: when the output is not a terminal, one line per file and per dock as it happens.

Progress bars redraw one line in place, which a log file or journald cannot show: there they print
nothing useful until the end. This listener writes a plain line when a dock starts, each time a
file is done, and whenever the dock's state changes; nothing in between.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ingest_agent.progress import DockProgress


def _default_write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


@dataclass
class _Seen:
    state: str
    files_done: int
    message: str


def lines_for(before: _Seen | None, p: DockProgress) -> list[str]:
    """The lines one progress snapshot adds to the log, given what was last written. Pure."""
    who = f"{p.serial}" + (f" ({p.officer})" if p.officer else "")
    out: list[str] = []
    if before is None:
        out.append(f"dock {who}: {p.files_total} file(s), {_mib(p.bytes_total)} [{p.transfer_id}]")
    done_before = before.files_done if before else 0
    for n in range(done_before + 1, p.files_done + 1):
        out.append(f"dock {who}: file {n}/{p.files_total} done ({_mib(max(p.bytes_copied, p.bytes_uploaded))})")
    if before is not None and (p.state != before.state or (p.message and p.message != before.message)):
        out.append(f"dock {who}: {p.state}" + (f": {p.message}" if p.message else ""))
    return out


class LineProgress:
    """A progress listener writing plain lines (thread-safe; several docks at once)."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self._write = write or _default_write
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, p: DockProgress) -> None:
        with self._lock:
            lines = lines_for(self._seen.get(p.transfer_id), p)
            self._seen[p.transfer_id] = _Seen(p.state, max(p.files_done, 0), p.message)
            for line in lines:
                self._write(line)


class _RequestsAtDebug(logging.Filter):
    """httpx logs every request at INFO (about 70 lines a dock): make them DEBUG records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def http_requests_at_debug() -> None:
    """Log the HTTP client's requests at DEBUG; idempotent."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RequestsAtDebug) for f in logger.filters):
            logger.addFilter(_RequestsAtDebug())
