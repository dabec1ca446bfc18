"""A station's USB bus as a umockdev description: an Ambarella recorder and a plain USB stick."""

from __future__ import annotations

import struct

HUB = "/devices/pci0000:00/0000:00:14.0/usb1"


def descriptors(vid: int, pid: int, *, iface_class: int, endpoints: tuple[int, ...]) -> bytes:
    """Device + configuration + interface + bulk endpoint descriptors, as sysfs ``descriptors`` holds them."""
    dev = struct.pack("<BBHBBBBHHHBBBB", 18, 1, 0x0200, 0, 0, 0, 64, vid, pid, 0x0100, 1, 2, 3, 1)
    iface = struct.pack(
        "<BBBBBBBBB",
        9,
        4,
        0,
        0,
        len(endpoints),
        iface_class,
        6 if iface_class == 8 else 0,
        0x50 if iface_class == 8 else 0,
        0,
    )
    eps = b"".join(struct.pack("<BBBBHB", 7, 5, ep, 2, 512, 0) for ep in endpoints)
    total = 9 + len(iface) + len(eps)
    cfg = struct.pack("<BBHBBBBB", 9, 2, total, 1, 1, 0, 0x80, 50)
    return dev + cfg + iface + eps


def usb_device(port: str, devnum: int, vid: int, pid: int, serial: str, product: str, desc: bytes) -> str:
    hexd = desc.hex().upper()
    return f"""P: {HUB}/{port}
N: bus/usb/001/{devnum:03d}={hexd}
E: BUSNUM=001
E: DEVNAME=/dev/bus/usb/001/{devnum:03d}
E: DEVNUM={devnum:03d}
E: DEVTYPE=usb_device
E: DRIVER=usb
E: ID_SERIAL_SHORT={serial}
E: PRODUCT={vid:x}/{pid:x}/100
E: SUBSYSTEM=usb
A: bConfigurationValue=1
A: bDeviceClass=00
A: bNumConfigurations=1
A: bNumInterfaces= 1
A: busnum=1
H: descriptors={hexd}
A: dev=189:{devnum}
A: devnum={devnum}
A: devpath={port.split("-")[1]}
A: idProduct={pid:04x}
A: idVendor={vid:04x}
A: product={product}
A: serial={serial}
A: speed=480
"""


def umockdev_description() -> str:
    recorder = usb_device(
        "1-4",
        5,
        0x4255,
        0x0001,
        "AMBUSB01",
        "Ambarella Recorder",
        descriptors(0x4255, 0x0001, iface_class=0xFF, endpoints=(0x01, 0x81)),
    )
    stick = usb_device(
        "1-6",
        6,
        0x0781,
        0x5567,
        "4C530001",
        "Cruzer Blade",
        descriptors(0x0781, 0x5567, iface_class=0x08, endpoints=(0x02, 0x81)),
    )
    lun = f"{HUB}/1-6/1-6:1.0/host6/target6:0:0/6:0:0:0"
    disk = f"""P: {HUB}/1-6/1-6:1.0
E: DEVTYPE=usb_interface
E: SUBSYSTEM=usb
A: bInterfaceClass=08

P: {lun}
E: DEVTYPE=scsi_device
E: SUBSYSTEM=scsi
A: vendor=SanDisk
A: model=Cruzer Blade
A: rev=1.00

P: {lun}/block/sdb
N: sdb
E: DEVNAME=/dev/sdb
E: DEVTYPE=disk
E: SUBSYSTEM=block
A: dev=8:16

P: {lun}/block/sdb/sdb1
N: sdb1
E: DEVNAME=/dev/sdb1
E: DEVTYPE=partition
E: ID_FS_LABEL=MYSTICK
E: ID_FS_TYPE=vfat
E: SUBSYSTEM=block
A: dev=8:17
A: partition=1
"""
    return "\n".join([recorder, stick, disk])
