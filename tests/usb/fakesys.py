"""A fake sysfs tree, mountinfo and /dev/disk/by-label, shaped like the kernel's for USB disks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FakeSys:
    root: Path
    mounts: list[str] = field(default_factory=list)
    _host: int = 6
    _minor: int = 16

    def __post_init__(self) -> None:
        self.sysfs = self.root / "sys"
        self.hub = self.sysfs / "devices" / "pci0000:00" / "0000:00:14.0" / "usb1"
        (self.sysfs / "bus" / "usb" / "devices").mkdir(parents=True)
        (self.sysfs / "dev" / "block").mkdir(parents=True)
        self.by_label = self.root / "dev" / "disk" / "by-label"
        self.by_label.mkdir(parents=True)
        self.mountinfo = self.root / "mountinfo"
        self.mountinfo.write_text("22 1 0:21 / / rw - overlay overlay rw\n")

    def usb(self, port: str, vid: int, pid: int, *, serial: str | None = None, product: str | None = None) -> Path:
        d = self.hub / port
        d.mkdir(parents=True)
        attrs = {
            "idVendor": f"{vid:04x}",
            "idProduct": f"{pid:04x}",
            "busnum": port.split("-")[0],
            "devnum": str(10 + len(os.listdir(self.hub))),
        }
        if serial:
            attrs["serial"] = serial
        if product:
            attrs["product"] = product
        for k, v in attrs.items():
            (d / k).write_text(v + "\n")
        (self.sysfs / "bus" / "usb" / "devices" / port).symlink_to(d)
        return d

    def disk(self, usb_dir: Path, *, vendor: str, model: str, rev: str = "1.00", partition: bool = True) -> str:
        """A SCSI LUN with a block device (and one partition); returns the name of the mountable node."""
        h = self._host
        self._host += 1
        lun = usb_dir / f"{usb_dir.name}:1.0" / f"host{h}" / f"target{h}:0:0" / f"{h}:0:0:0"
        lun.mkdir(parents=True)
        for k, v in (("vendor", vendor.ljust(8)), ("model", model.ljust(16)), ("rev", rev)):
            (lun / k).write_text(v + "\n")
        (lun / "scsi_generic" / f"sg{h}").mkdir(parents=True)
        name = "sd" + chr(ord("a") + h - 5)
        disk = lun / "block" / name
        disk.mkdir(parents=True)
        (disk / "dev").write_text(f"8:{self._minor}\n")
        (self.sysfs / "dev" / "block" / f"8:{self._minor}").symlink_to(disk)
        node = name
        if partition:
            part = disk / f"{name}1"
            part.mkdir()
            (part / "dev").write_text(f"8:{self._minor + 1}\n")
            (part / "partition").write_text("1\n")
            (self.sysfs / "dev" / "block" / f"8:{self._minor + 1}").symlink_to(part)
            node = f"{name}1"
        self._minor += 16
        return node

    def dev_of(self, node: str) -> str:
        for link in (self.sysfs / "dev" / "block").iterdir():
            if link.resolve().name == node:
                return link.name
        raise KeyError(node)

    def mount(self, node: str, where: Path, label: str | None = None) -> None:
        escaped = str(where).replace(" ", "\\040")
        with self.mountinfo.open("a") as f:
            f.write(f"{40 + len(self.mounts)} 22 {self.dev_of(node)} / {escaped} rw,nosuid - vfat /dev/{node} rw\n")
        self.mounts.append(node)
        if label:
            (self.by_label / label.replace(" ", "\\x20")).symlink_to(f"../../{node}")
