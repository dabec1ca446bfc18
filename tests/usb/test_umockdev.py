"""pyusb and pyudev enumerating a synthetic recorder and USB stick under umockdev (no hardware, no root).

umockdev emulates sysfs, udev and usbdevfs nodes through LD_PRELOAD; it has no SCSI or block-layer
emulation, so the mount table is a file the test writes, and the file side is tested elsewhere
against directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import services
from tests.usb.umockdev_bus import umockdev_description

ROOT = Path(__file__).parents[2]


def test_pyusb_and_pyudev_see_the_synthetic_recorder_and_the_stick_is_not_allowed(tmp_path: Path) -> None:
    services.require_tool("umockdev-run")
    bus = tmp_path / "bus.umockdev"
    bus.write_text(umockdev_description())
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - overlay overlay rw\n41 22 8:17 / /media/station/MYSTICK rw,nosuid - vfat /dev/sdb1 rw\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        ["umockdev-run", "-d", str(bus), "--", sys.executable, "-m", "tests.usb.umockdev_probe", str(mountinfo)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])

    # pyusb (libusb) enumerates the recorder and reads its descriptors: the profile's interface and endpoints
    assert seen["pyusb_all"] == ["0781:5567", "4255:0001"]
    assert seen["recorder"] == {
        "bus": 1,
        "address": 5,
        "ports": [4],
        "configuration": 1,
        "interface": 0,
        "class": 0xFF,
        "endpoints": [0x01, 0x81],
    }
    # all three scanners agree; the allow-list takes the recorder and leaves the stick alone
    for scanner in ("pyusb", "sysfs", "pyudev"):
        assert seen[scanner]["1-4"]["profile"] == "ambarella", scanner
        assert seen[scanner]["1-6"]["profile"] is None, scanner
    assert seen["sysfs"]["1-6"]["scsi"] == ["SanDisk Cruzer Blade 1.00"] == seen["pyudev"]["1-6"]["scsi"]
    # USB device -> block device -> mount point, and back
    assert seen["stick_volumes"] == [["sdb1", "/media/station/MYSTICK"]]
    assert seen["stick_port_of_mount"] == "1-6"
    assert seen["udev_labels"] == {"sdb": None, "sdb1": "MYSTICK"}
