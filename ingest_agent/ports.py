"""The state of each dock port, told to the server so that a failed dock never fails silently.

A *port* is where a recorder is docked: a volume under a dock root (its folder name), or a USB
recorder. The station page, the fleet page and the officer's page show each port's state with the
reason and what to do, as a docking station shows a red slot. Reports are best effort: a station
that cannot reach the server keeps docking, and the journal still holds the truth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_drivers.errors import DeviceGoneError, DriverError, IdentityError, UnsafeEntryError

log = logging.getLogger(__name__)

#: Port states as the server knows them.
SETTLING = "settling"  # the volume is there; waiting for its files to stop changing
RETRYING = "retrying"  # identification failed; the station looks again shortly
TRANSFERRING = "transferring"
DONE = "done"
WAITING = "waiting"  # files wait on the station (server offline, spool full)
FAILED = "failed"
EMPTY = "empty"  # nothing docked (the recorder was taken away)

#: What the person at the station should do, by code (the pages translate it).
ADVICE_REDOCK = "redock"  # unplug the recorder and dock it again
ADVICE_ADMIN = "call_admin"  # give the recorder to the device administrator
ADVICE_WAIT = "wait"  # nothing: the station finishes by itself
ADVICE_NONE = ""

Send = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Failure:
    """Why a dock failed, in words for a person, and what they should do."""

    reason: str
    advice: str


def classify(exc: BaseException) -> Failure:
    """The reason and advice for an exception that ended a dock. Pure."""
    text = str(exc)[:480] or type(exc).__name__
    if isinstance(exc, IdentityError):
        return Failure(f"the recorder's serial could not be read: {text}", ADVICE_REDOCK)
    if isinstance(exc, DeviceGoneError):
        return Failure(f"the recorder went away: {text}", ADVICE_REDOCK)
    if isinstance(exc, UnsafeEntryError):
        return Failure(f"the recorder holds something the station refuses: {text}", ADVICE_ADMIN)
    if isinstance(exc, DriverError):
        return Failure(f"not a recorder this station can read: {text}", ADVICE_ADMIN)
    return Failure(f"the station failed while docking: {text}", ADVICE_ADMIN)


def port_name(root: Path) -> str:
    """How a volume's port is named to people: its folder (the volume label)."""
    return root.name[:255] or str(root)[:255]


class PortReporter:
    """Remembers each port's last state and sends a change to the server (never twice the same)."""

    def __init__(self, send: Send | None) -> None:
        self._send = send
        self._last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def report(
        self,
        port: str,
        state: str,
        *,
        reason: str | None = None,
        advice: str = ADVICE_NONE,
        serial: str | None = None,
        transfer_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        body = {
            "port": port,
            "state": state,
            "reason": reason,
            "advice": advice or None,
            "device_serial": serial,
            "transfer_id": transfer_id,
            "attempt": attempt,
        }
        with self._lock:
            if self._last.get(port) == body:
                return
            self._last[port] = body
        if state == FAILED:
            log.error("dock %s failed: %s (%s)", port, reason, advice or "-")
        if self._send is None:
            return
        try:
            self._send(body)
        except Exception as exc:  # best effort: the station keeps docking while the server is away
            log.warning("port report for %s failed: %s", port, exc)

    def state(self, port: str) -> str | None:
        with self._lock:
            last = self._last.get(port)
        return None if last is None else str(last["state"])
