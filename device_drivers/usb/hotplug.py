"""Noticing USB recorders: udev hot-plug events (pyudev), or polled pyusb enumeration without udev.

Every rescan is debounced and yields a diff of devices added and removed. Only devices on the
allow-list (recorder VID:PIDs and SCSI inquiry strings from the profiles and the configuration)
are reported; anything else is ignored and logged, so a station never becomes a way to copy data
in or out (rule art. 11).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_drivers.usb.profiles import Profile, normalize_scsi, parse_vidpid

log = logging.getLogger(__name__)
_PORT = re.compile(r"^\d+-\d+(\.\d+)*$")


@dataclass(frozen=True)
class UsbDevice:
    """One USB device as the station sees it on a port."""

    bus: int
    port_path: str  # "1-3.2": bus 1, hub port 3, port 2; stable for one physical dock port
    vendor_id: int
    product_id: int
    address: int | None = None
    serial: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    sys_path: str | None = None
    scsi: tuple[str, ...] = ()  # "vendor model rev" of its SCSI LUNs, when it is a disk

    @property
    def key(self) -> tuple[str, int, int, str | None]:
        return (self.port_path, self.vendor_id, self.product_id, self.serial)

    @property
    def vidpid(self) -> str:
        return f"{self.vendor_id:04x}:{self.product_id:04x}"

    def describe(self) -> str:
        name = " ".join(x for x in (self.manufacturer, self.product) if x) or "unnamed device"
        return f"{self.vidpid} {name} on port {self.port_path}" + (f" serial {self.serial}" if self.serial else "")


def diff_devices(
    before: Mapping[Any, UsbDevice], after: Mapping[Any, UsbDevice]
) -> tuple[list[UsbDevice], list[UsbDevice]]:
    """``(added, removed)`` between two scans keyed by :attr:`UsbDevice.key`."""
    added = [after[k] for k in sorted(after.keys() - before.keys(), key=str)]
    removed = [before[k] for k in sorted(before.keys() - after.keys(), key=str)]
    return added, removed


# --- scanners ---------------------------------------------------------------------------------


def scan_pyudev(context: Any = None) -> list[UsbDevice]:
    """USB devices as udev (or libudev reading sysfs) lists them."""
    import pyudev

    context = context or pyudev.Context()
    out = []
    for dev in context.list_devices(subsystem="usb", DEVTYPE="usb_device"):
        name = dev.sys_name
        if not _PORT.match(name):
            continue
        attrs = dev.attributes

        def attr(key: str, attrs: Any = attrs) -> str | None:
            try:
                return str(attrs.asstring(key)).strip()
            except (KeyError, UnicodeDecodeError, OSError):
                return None

        vid, pid = attr("idVendor"), attr("idProduct")
        if not vid or not pid:
            continue
        scsi = []
        for child in context.list_devices(subsystem="scsi", DEVTYPE="scsi_device", parent=dev):
            parts = [
                str(child.attributes.asstring(a)).strip()
                for a in ("vendor", "model", "rev")
                if a in child.attributes.available_attributes
            ]
            scsi.append(" ".join(p for p in parts if p))
        out.append(
            UsbDevice(
                bus=int(attr("busnum") or name.split("-")[0]),
                port_path=name,
                vendor_id=int(vid, 16),
                product_id=int(pid, 16),
                address=int(attr("devnum") or 0) or None,
                serial=attr("serial") or dev.get("ID_SERIAL_SHORT"),
                manufacturer=attr("manufacturer"),
                product=attr("product"),
                sys_path=dev.sys_path,
                scsi=tuple(scsi),
            )
        )
    return out


def scan_pyusb(backend: Any = None) -> list[UsbDevice]:
    """USB devices by libusb enumeration (no udev needed); no SCSI strings, strings only if readable."""
    import usb.core

    out = []
    for dev in usb.core.find(find_all=True, backend=backend):
        ports = getattr(dev, "port_numbers", None) or ()
        if not ports:
            continue  # root hub
        serial = None
        if dev.iSerialNumber:
            try:
                serial = usb.util.get_string(dev, dev.iSerialNumber)
            except (usb.core.USBError, ValueError, NotImplementedError):
                serial = None
        out.append(
            UsbDevice(
                bus=dev.bus,
                port_path=f"{dev.bus}-{'.'.join(map(str, ports))}",
                vendor_id=dev.idVendor,
                product_id=dev.idProduct,
                address=dev.address,
                serial=serial,
            )
        )
    return out


# --- allow-list -----------------------------------------------------------------------------


@dataclass
class AllowList:
    """Recorder VID:PIDs and SCSI inquiry strings, each bound to the profile that speaks to it."""

    usb: dict[tuple[int, int], str] = field(default_factory=dict)
    scsi: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_profiles(cls, profiles: Mapping[str, Profile], extra: Iterable[str] = ()) -> AllowList:
        """Every profile's ``match``, plus entries ``VID:PID=profile`` or ``scsi:STRING=profile``."""
        allow = cls()
        for p in profiles.values():
            for ids in p.usb_ids:
                allow.usb[ids] = p.name
            for s in p.scsi_ids:
                allow.scsi[s] = p.name
        for entry in extra:
            what, sep, name = entry.rpartition("=")
            if not sep or name not in profiles:
                raise ValueError(
                    f"allow-list entry {entry!r}: expected VID:PID=profile or scsi:STRING=profile, "
                    f"with a profile among {sorted(profiles)}"
                )
            if what.lower().startswith("scsi:"):
                allow.scsi[normalize_scsi(what[5:])] = name
            else:
                allow.usb[parse_vidpid(what)] = name
        return allow

    def profile_for(self, device: UsbDevice) -> str | None:
        """The profile name for an allowed recorder, None for anything else."""
        name = self.usb.get((device.vendor_id, device.product_id))
        if name is not None:
            return name
        for text in device.scsi:
            whole = normalize_scsi(text)
            for candidate in (whole, normalize_scsi(" ".join(text.split()[:-1]))):
                if candidate in self.scsi:
                    return self.scsi[candidate]
        return None


# --- the watcher ----------------------------------------------------------------------------

Scanner = Callable[[], list[UsbDevice]]


class UsbWatcher:
    """Calls ``on_added(device, profile_name)`` for allowed recorders and ``on_removed(device)``.

    udev events (pyudev monitor) trigger a debounced rescan; without udev the scanner is polled.
    Devices not on the allow-list are logged once per plug-in and passed to ``on_ignored``.
    """

    def __init__(
        self,
        allow: AllowList,
        on_added: Callable[[UsbDevice, str], None],
        on_removed: Callable[[UsbDevice], None],
        *,
        scanner: Scanner | None = None,
        on_ignored: Callable[[UsbDevice], None] | None = None,
        use_udev: bool = True,
        poll_interval: float = 1.0,
        debounce: float = 0.3,
    ) -> None:
        self.allow, self.on_added, self.on_removed, self.on_ignored = allow, on_added, on_removed, on_ignored
        self.use_udev, self.poll_interval, self.debounce = use_udev, poll_interval, debounce
        self.scanner = scanner
        self.mechanism = "stopped"
        self._known: dict[Any, UsbDevice] = {}
        self._cond = threading.Condition()
        self._scan_lock = threading.Lock()
        self._due: float | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._observer: Any = None

    def start(self) -> None:
        self._stopping = False
        if self.use_udev:
            self._observer = self._start_udev()
        if self.scanner is None:
            self.scanner = scan_pyudev if self._observer is not None else scan_pyusb
        self.mechanism = "udev" if self._observer is not None else "poll"
        self.rescan()
        self._thread = threading.Thread(target=self._run, name="custodia-usb-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        self.mechanism = "stopped"

    def __enter__(self) -> UsbWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def devices(self) -> list[UsbDevice]:
        return list(self._known.values())

    def notify_change(self) -> None:
        with self._cond:
            self._due = time.monotonic() + self.debounce
            self._cond.notify_all()

    def rescan(self) -> tuple[list[UsbDevice], list[UsbDevice]]:
        assert self.scanner is not None
        with self._scan_lock:
            current = {d.key: d for d in self.scanner()}
            added, removed = diff_devices(self._known, current)
            self._known = current
            for dev in removed:
                self._safely(self.on_removed, dev)
            for dev in added:
                profile = self.allow.profile_for(dev)
                if profile is None:
                    log.warning(
                        "ignored USB device %s: not a recorder on the allow-list (rule art. 11)", dev.describe()
                    )
                    if self.on_ignored is not None:
                        self._safely(self.on_ignored, dev)
                    continue
                log.info("recorder %s docked (profile %s)", dev.describe(), profile)
                self._safely(self.on_added, dev, profile)
        return added, removed

    @staticmethod
    def _safely(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("USB callback %r failed", callback)

    def _run(self) -> None:
        next_poll = time.monotonic() + self.poll_interval
        while True:
            with self._cond:
                while not self._stopping:
                    polling = self._observer is None
                    deadline = min(next_poll if polling else float("inf"), self._due or float("inf"))
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(min(remaining, 3600))
                if self._stopping:
                    return
                self._due = None
            next_poll = time.monotonic() + self.poll_interval
            try:
                self.rescan()
            except Exception:
                log.exception("USB rescan failed")

    def _start_udev(self) -> Any:
        """A pyudev monitor on the ``usb`` subsystem, or None when udev is absent."""
        if not Path("/run/udev/control").exists():
            log.info("udev is not running here; polling USB enumeration every %.1f s", self.poll_interval)
            return None
        try:
            import pyudev

            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            monitor.filter_by("usb")
            observer = pyudev.MonitorObserver(
                monitor, callback=lambda _device: self.notify_change(), name="custodia-udev"
            )
            observer.start()
            return observer
        except Exception:
            log.warning("cannot listen to udev; polling USB enumeration", exc_info=True)
            return None
