"""Run under ``umockdev-run``: what pyusb, pyudev and the sysfs scanner see of the synthetic bus (JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyudev
import usb.core

from device_drivers.usb.hotplug import AllowList, UsbDevice, scan_pyudev, scan_pyusb
from device_drivers.usb.mapping import port_of_mount, usb_device_dir, volumes_of
from device_drivers.usb.profiles import shipped_profiles
from tests.usb.sysfs import scan_sysfs


def main(mountinfo: Path) -> dict[str, object]:
    profiles = shipped_profiles()
    allow = AllowList.from_profiles(profiles)
    recorder: Any = usb.core.find(idVendor=0x4255, idProduct=0x0001)
    cfg = recorder[0]  # from the descriptors: no control transfer needed
    intf = cfg[(0, 0)]
    out: dict[str, object] = {
        "pyusb_all": sorted(f"{d.idVendor:04x}:{d.idProduct:04x}" for d in usb.core.find(find_all=True)),
        "recorder": {
            "bus": recorder.bus,
            "address": recorder.address,
            "ports": list(recorder.port_numbers or ()),
            "configuration": cfg.bConfigurationValue,
            "interface": intf.bInterfaceNumber,
            "class": intf.bInterfaceClass,
            "endpoints": [e.bEndpointAddress for e in intf],
        },
    }
    scans: dict[str, list[UsbDevice]] = {
        "pyusb": scan_pyusb(),
        "sysfs": scan_sysfs(Path("/sys")),
        "pyudev": scan_pyudev(),
    }
    for name, devices in scans.items():
        out[name] = {
            d.port_path: {"vidpid": d.vidpid, "scsi": list(d.scsi), "profile": allow.profile_for(d)} for d in devices
        }
    stick_dir = usb_device_dir("1-6")
    vols = volumes_of(stick_dir, mountinfo=mountinfo)
    out["stick_volumes"] = [(v.block.name, str(v.mount_point)) for v in vols]
    out["stick_port_of_mount"] = port_of_mount(vols[0].mount_point, mountinfo=mountinfo) if vols else None
    ctx = pyudev.Context()
    out["udev_labels"] = {d.sys_name: d.properties.get("ID_FS_LABEL") for d in ctx.list_devices(subsystem="block")}
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
