"""From a USB device to its block devices and their mount points, through sysfs and mountinfo.

The identity of a docked disk comes from the USB device it hangs off (bus, port path, serial), not
only from a volume label anyone can write. Everything takes the sysfs root, the mountinfo file and
the by-label directory as arguments, so it is tested against a fake tree (or a umockdev testbed).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SYSFS = Path("/sys")
MOUNTINFO = Path("/proc/self/mountinfo")
BY_LABEL = Path("/dev/disk/by-label")
_SCSI_DEVICE = re.compile(r"^\d+:\d+:\d+:\d+$")


@dataclass(frozen=True)
class BlockDevice:
    name: str  # sdb, sdb1
    dev: str  # "major:minor"
    sys_path: Path
    partition: bool

    @property
    def node(self) -> str:
        return f"/dev/{self.name}"


@dataclass(frozen=True)
class MappedVolume:
    """A mounted file system on a USB device's disk."""

    block: BlockDevice
    mount_point: Path
    label: str | None
    fs_type: str


def read_attr(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def usb_device_dir(port_path: str, sysfs: Path = SYSFS) -> Path:
    """``/sys/bus/usb/devices/1-3.2`` resolved to the device's directory under ``/sys/devices``."""
    return (sysfs / "bus" / "usb" / "devices" / port_path).resolve()


def _walk(top: Path) -> list[Path]:
    """Directories below ``top`` without following symlinks (sysfs is full of loops)."""
    out: list[Path] = []
    for dirpath, dirnames, _files in os.walk(top, followlinks=False):
        out.extend(Path(dirpath) / d for d in dirnames)
    return out


def block_devices_of(usb_dir: Path) -> list[BlockDevice]:
    """Whole disks and partitions whose sysfs directory lies below the USB device's."""
    found = []
    for d in _walk(usb_dir):
        if d.parent.name != "block" and d.parent.parent.name != "block":
            continue
        dev = read_attr(d / "dev")
        if dev is None or not re.fullmatch(r"\d+:\d+", dev):
            continue
        found.append(BlockDevice(d.name, dev, d, partition=(d / "partition").exists()))
    return sorted(found, key=lambda b: b.name)


def scsi_strings_of(usb_dir: Path) -> list[str]:
    """``vendor model rev`` of each SCSI LUN below the USB device (as the kernel read INQUIRY)."""
    out: list[str] = []
    for d in _walk(usb_dir):
        if _SCSI_DEVICE.match(d.name) and (d / "vendor").exists():
            parts = [read_attr(d / a) or "" for a in ("vendor", "model", "rev")]
            out.append(" ".join(p for p in parts if p))
    return out


def usb_port_of_block(block_sys_path: Path, sysfs: Path = SYSFS) -> str | None:
    """The USB port path (``1-3.2``) a block device hangs off, or None if it is not on USB."""
    for parent in Path(block_sys_path).resolve().parents:
        if re.fullmatch(r"\d+-\d+(\.\d+)*", parent.name) and (parent / "idVendor").exists():
            return parent.name
    return None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mountinfo(mountinfo: Path = MOUNTINFO) -> list[tuple[str, Path, str, str]]:
    """``(major:minor, mount point, fs type, source)`` for each mount."""
    out: list[tuple[str, Path, str, str]] = []
    try:
        text = mountinfo.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        rest = right.split()
        out.append(
            (
                fields[2],
                Path(_unescape(fields[4])),
                rest[0] if rest else "",
                _unescape(rest[1]) if len(rest) > 1 else "",
            )
        )
    return out


def udev_unescape(name: str) -> str:
    """udev writes unsafe bytes of a label as ``\\xNN`` in /dev/disk/by-label names."""
    raw = re.sub(
        rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), name.encode("utf-8", "surrogateescape")
    )
    return raw.decode("utf-8", errors="replace")


def labels_by_device(by_label: Path = BY_LABEL) -> dict[str, str]:
    """Block device name -> file-system label, from the ``/dev/disk/by-label`` links udev keeps."""
    out: dict[str, str] = {}
    try:
        entries = list(os.scandir(by_label))
    except OSError:
        return out
    for e in entries:
        try:
            target = os.path.basename(os.readlink(e.path))
        except OSError:
            continue
        out[target] = udev_unescape(e.name)
    return out


def volumes_of(usb_dir: Path, *, mountinfo: Path = MOUNTINFO, by_label: Path = BY_LABEL) -> list[MappedVolume]:
    """Mounted file systems on the USB device's disks (partitions first, then whole disks)."""
    blocks = {b.dev: b for b in block_devices_of(usb_dir)}
    labels = labels_by_device(by_label)
    out = []
    for dev, mount_point, fs_type, _source in read_mountinfo(mountinfo):
        block = blocks.get(dev)
        if block is not None:
            out.append(MappedVolume(block, mount_point, labels.get(block.name), fs_type))
    return sorted(out, key=lambda v: (not v.block.partition, v.block.name))


def volume_by_label(
    labels: set[str], *, sysfs: Path = SYSFS, mountinfo: Path = MOUNTINFO, by_label: Path = BY_LABEL
) -> MappedVolume | None:
    """A mounted USB disk whose file-system label (or, lacking one, mount directory) is in ``labels``."""
    names = labels_by_device(by_label)
    for dev, mount_point, fs_type, _source in read_mountinfo(mountinfo):
        block_dir = sysfs / "dev" / "block" / dev
        if not block_dir.exists():
            continue
        name = block_dir.resolve().name
        label = names.get(name) or mount_point.name
        if label in labels and usb_port_of_block(block_dir, sysfs) is not None:
            block = BlockDevice(name, dev, block_dir.resolve(), (block_dir / "partition").exists())
            return MappedVolume(block, mount_point, names.get(name), fs_type)
    return None


def port_of_mount(mount_point: Path, *, sysfs: Path = SYSFS, mountinfo: Path = MOUNTINFO) -> str | None:
    """The USB port path of the disk mounted at ``mount_point``, or None (not mounted, not USB)."""
    target = Path(mount_point)
    for dev, point, _fs, _source in read_mountinfo(mountinfo):
        if point == target:
            block_dir = sysfs / "dev" / "block" / dev
            return usb_port_of_block(block_dir, sysfs) if block_dir.exists() else None
    return None


def sg_nodes_of(usb_dir: Path) -> list[str]:
    """``/dev/sgN`` nodes of the SCSI LUNs below the USB device (for SG_IO vendor commands)."""
    return sorted(f"/dev/{d.name}" for d in _walk(usb_dir) if d.parent.name == "scsi_generic")
