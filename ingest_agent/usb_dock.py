"""USB recorders that need a vendor handshake: plug-in -> handshake -> disk -> ingest, per dock.

For each allowed recorder the USB watcher reports, one thread: open its control channel, log in
with the configured password, read identity, battery and clock, set the clock if policy allows,
switch it to mass storage, wait for the disk, then run the usual ``ingest_volume`` with the
handshake's identity and status. Every step goes to the progress listener; a failure ends the dock
with its reason. Passwords are looked up at each dock and never logged.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from device_drivers.errors import DeviceGoneError, DriverError
from device_drivers.usb.hotplug import AllowList, UsbDevice
from device_drivers.usb.mapping import port_of_mount
from device_drivers.usb.profiles import Profile, load_profiles
from device_drivers.usb.protocol import RecorderProtocol
from device_drivers.usb.protocol_errors import ResultError, TransportTimeout
from device_drivers.usb.vendor_driver import (
    ClockPolicy,
    Locate,
    Step,
    SysfsLocator,
    UsbRecorderDriver,
    handshake,
    wait_for_volume,
)
from ingest_agent.journal import TransferState
from ingest_agent.pipeline import DockReport, ingest_volume
from ingest_agent.progress import DockProgress, Listener, ProgressReporter
from ingest_agent.station_clock import StationClock, station_clock
from ingest_agent.transfer import Station

log = logging.getLogger(__name__)

Connect = Callable[[Profile, UsbDevice], RecorderProtocol]


def failure_reason(exc: BaseException) -> str:
    """What the station shows when a USB dock fails."""
    if isinstance(exc, ResultError):
        return f"{exc.code.name}: {exc.reason}"
    if isinstance(exc, TransportTimeout):
        return f"timeout: {exc}"
    if isinstance(exc, DeviceGoneError):
        return f"device gone: {exc}"
    return str(exc) or type(exc).__name__


def _default_connect(profile: Profile, device: UsbDevice) -> RecorderProtocol:
    from device_drivers.usb.connect import connect

    return connect(profile, device)


class UsbDock:
    """Docks the USB recorders of one station, one thread per recorder."""

    def __init__(
        self,
        station: Station,
        *,
        profiles: dict[str, Profile] | None = None,
        listener: Listener | None = None,
        stop: threading.Event | None = None,
        connect: Connect | None = None,
        locate: Locate | None = None,
        clock: Callable[[], StationClock] = station_clock,
    ) -> None:
        self.station, self.settings = station, station.settings
        self.profiles = profiles if profiles is not None else load_profiles(self.settings.usb_profile_dirs)
        self.allow = AllowList.from_profiles(self.profiles, self.settings.usb_allow)
        self.listener, self.stop = listener, stop or threading.Event()
        self.connect = connect or _default_connect
        self.locate = locate or SysfsLocator()
        self.clock = clock
        self.reports: list[DockReport] = []
        self.failures: list[tuple[UsbDevice, str]] = []
        self._threads: dict[str, threading.Thread] = {}
        self._roots: set[Path] = set()
        self._lock = threading.Lock()

    # --- watcher callbacks --------------------------------------------------------------------

    def on_added(self, device: UsbDevice, profile: str) -> None:
        with self._lock:
            running = self._threads.get(device.port_path)
            if running is not None and running.is_alive():
                return  # the same recorder re-enumerating (e.g. in disk mode): its dock goes on
            t = threading.Thread(target=self.dock, args=(device, profile), name=f"usb-{device.port_path}", daemon=True)
            self._threads[device.port_path] = t
            t.start()

    def on_removed(self, device: UsbDevice) -> None:
        log.info("USB device %s went away", device.describe())

    def owns(self, root: Path) -> bool:
        """Is this volume a USB recorder this dock handles (so the folder watcher leaves it alone)?"""
        with self._lock:
            if Path(root) in self._roots:
                return True
            busy = {port for port, t in self._threads.items() if t.is_alive()}
        return bool(busy) and port_of_mount(Path(root)) in busy

    def join(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)

    # --- one docking --------------------------------------------------------------------------

    def dock(self, device: UsbDevice, profile_name: str) -> DockReport | None:
        """Handshake, wait for the disk, ingest; None (and a ``failed`` progress) if it went wrong."""
        transfer_id = str(uuid.uuid4())
        reporter = ProgressReporter(
            DockProgress(
                transfer_id=transfer_id, serial=device.serial or device.port_path, officer="", state=Step.CONNECTING
            ),
            send=None,
            listener=self.listener,
        )
        try:
            profile = self.profiles[profile_name]
            sclock = self.clock()
            policy = ClockPolicy(
                mode=self.settings.device_clock_policy,
                tolerance_seconds=self.settings.device_clock_tolerance_seconds,
                station_synchronized=sclock.synchronized,
                require_station_sync=self.settings.device_clock_requires_station_sync,
            )
            reporter.update(state=Step.CONNECTING, force=True)
            proto = self.connect(profile, device)
            hs = handshake(
                proto,
                device=device,
                clock=policy,
                passwords=lambda serials: self.settings.device_password(profile.name, list(serials)),
                on_step=lambda step, msg: reporter.update(state=step, message=msg),
            )
            officer = " ".join(x for x in (hs.identity.officer_no, hs.identity.officer_name) if x)
            reporter.update(state=Step.WAITING_FOR_VOLUME, serial=hs.identity.serial, officer=officer, message="")
            root = wait_for_volume(
                hs, self.locate, timeout=self.settings.usb_reenumerate_timeout_seconds, stop=self.stop
            )
            with self._lock:
                self._roots.add(root)
            try:
                driver = UsbRecorderDriver(root, handshake=hs)
                report = ingest_volume(
                    root,
                    station=self.station,
                    driver=driver,
                    transfer_id=transfer_id,
                    listener=self.listener,
                    stop=self.stop,
                    extra={"station_clock": sclock.payload()},
                    once_per_docking=True,  # a restart finds it mounted still: the same docking
                )
            finally:
                with self._lock:
                    self._roots.discard(root)
        except (DriverError, OSError, ValueError) as exc:
            reason = failure_reason(exc)
            log.error("USB recorder %s (%s): docking failed: %s", device.describe(), profile_name, reason)
            self.failures.append((device, reason))
            reporter.update(state=TransferState.FAILED, message=reason, force=True)
            return None
        self.reports.append(report)
        log.info("USB recorder %s: %s %s", report.serial, report.state, report.files)
        return report
