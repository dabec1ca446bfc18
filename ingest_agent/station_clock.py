"""The station's own clock: is it synchronised, and by how much might it be off (best effort).

Read from the kernel (``adjtimex`` with no changes, unprivileged) or, failing that, from
``timedatectl show``. Sent with each USB docking so the server can judge the recorder clock offsets
the station measured, and used to refuse setting recorder clocks from an unsynchronised station.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

STA_UNSYNC = 0x0040
STA_NANO = 0x2000
TIME_ERROR = 5


@dataclass(frozen=True)
class StationClock:
    synchronized: bool | None  # None: the station cannot tell
    offset_seconds: float | None = None  # the kernel's current estimate of its offset from the reference
    max_error_seconds: float | None = None
    source: str = "unknown"

    def payload(self) -> dict[str, Any]:
        return asdict(self)


class _Timex(ctypes.Structure):
    """``struct timex`` from <sys/timex.h> (Linux)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def from_adjtimex() -> StationClock | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        tx = _Timex()  # modes 0: read only
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    unit = 1e9 if tx.status & STA_NANO else 1e6
    synced = state != TIME_ERROR and not tx.status & STA_UNSYNC
    return StationClock(
        synchronized=synced, offset_seconds=tx.offset / unit, max_error_seconds=tx.maxerror / 1e6, source="adjtimex"
    )


def from_timedatectl() -> StationClock | None:
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=3, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    if out.returncode != 0 or value not in ("yes", "no"):
        return None
    return StationClock(synchronized=value == "yes", source="timedatectl")


def station_clock() -> StationClock:
    """The best the station can tell about its own clock; never raises."""
    for probe in (from_adjtimex, from_timedatectl):
        try:
            found = probe()
        except Exception:
            log.debug("station clock probe %s failed", probe.__name__, exc_info=True)
            continue
        if found is not None:
            return found
    return StationClock(synchronized=None)
