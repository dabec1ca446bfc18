"""What every simulated recorder shares: its state, faults to inject, and the switch to disk mode."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from device_drivers.usb.codecs import ZfyInfo
from device_drivers.usb.protocol_errors import DeviceGoneError, TransportTimeout


@dataclass
class SimulatedRecorder:
    """A recorder in control mode until told to switch; then it leaves the bus and (maybe) comes back
    as a disk, which ``on_disk_mode`` stands for (tests create the mounted volume's directory there)."""

    info: ZfyInfo = field(
        default_factory=lambda: ZfyInfo("DSJ0001", "102345", "张三", "330100000001", "杭州市市场监督管理局稽查支队")
    )
    id_code: str = "ID0001"
    password: str = ""  # empty: the device has none configured (a test sets one)
    clock_offset: timedelta = timedelta(seconds=-95)  # device clock minus real time
    battery_level: int = 76
    resolution_wh: tuple[int, int] = (1920, 1080)
    card: bool = True
    recording: bool = False
    #: Command names that never get an answer (a firmware that hangs).
    hang: set[str] = field(default_factory=set)
    #: The device vanishes (unplugged) when this many commands have been received.
    vanish_after: int | None = None
    reenumerates: bool = True
    reenumerate_delay: float = 0.0
    on_disk_mode: Callable[[], None] | None = None
    mode: str = "control"  # "control", then "disk"; "gone" once unplugged
    commands: list[str] = field(default_factory=list)  # what the host asked, by name (never arguments)
    clock_set_to: datetime | None = None
    #: what a family with a ``list_important`` command answers: the files marked important (重要文件)
    important_files: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def set_clock(self, when: datetime) -> None:
        self.clock_set_to = when
        self.clock_offset = when - datetime.now(UTC)

    def received(self, name: str) -> None:
        """Book one command; raise as the host would see a vanished or hung device."""
        if self.mode != "control":
            raise DeviceGoneError("the recorder is no longer in control mode")
        self.commands.append(name)
        if self.vanish_after is not None and len(self.commands) >= self.vanish_after:
            self.mode = "gone"
            raise DeviceGoneError(f"the recorder was unplugged during {name}")
        if name in self.hang:
            raise TransportTimeout(f"the recorder does not answer {name}")

    def can_switch(self) -> bool:
        return self.card and not self.recording

    def switch_to_disk(self) -> None:
        """Leave control mode; re-enumerate as a disk unless told never to."""
        self.mode = "disk"
        if not self.reenumerates or self.on_disk_mode is None:
            return
        if self.reenumerate_delay <= 0:
            self.on_disk_mode()
        else:
            timer = threading.Timer(self.reenumerate_delay, self.on_disk_mode)
            timer.daemon = True
            timer.start()
