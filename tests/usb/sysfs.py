"""Test helpers: USB devices read straight from a (umockdev-made) sysfs tree, and a recorder disk
found as a folder named by one of its labels. The product reads devices through udev or libusb
(device_drivers/usb/hotplug.py) and finds disks through mountinfo (vendor_driver.MountLocator)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from device_drivers.usb.hotplug import UsbDevice
from device_drivers.usb.mapping import SYSFS, read_attr, scsi_strings_of
from device_drivers.usb.vendor_driver import Handshake

_PORT = re.compile(r"^\d+-\d+(\.\d+)*$")


def scan_sysfs(sysfs: Path = SYSFS) -> list[UsbDevice]:
    """USB devices from ``/sys/bus/usb/devices`` (root hubs and interfaces left out)."""
    base = sysfs / "bus" / "usb" / "devices"
    try:
        names = sorted(p.name for p in base.iterdir())
    except OSError:
        return []
    out = []
    for name in names:
        if not _PORT.match(name):
            continue
        d = (base / name).resolve()
        vid, pid = read_attr(d / "idVendor"), read_attr(d / "idProduct")
        if not vid or not pid:
            continue
        out.append(
            UsbDevice(
                bus=int(read_attr(d / "busnum") or name.split("-")[0]),
                port_path=name,
                vendor_id=int(vid, 16),
                product_id=int(pid, 16),
                address=int(read_attr(d / "devnum") or 0) or None,
                serial=read_attr(d / "serial"),
                manufacturer=read_attr(d / "manufacturer"),
                product=read_attr(d / "product"),
                sys_path=str(d),
                scsi=tuple(scsi_strings_of(d)),
            )
        )
    return out


@dataclass
class RootsLocator:
    """The recorder's disk as a directory named by one of its labels under mount roots (demos, tests)."""

    roots: Iterable[Path] = field(default_factory=list)

    def __call__(self, hs: Handshake) -> Path | None:
        labels = hs.labels()
        for root in self.roots:
            for label in sorted(labels):
                path = Path(root) / label
                if path.is_dir() and not path.is_symlink():
                    return path
        return None
