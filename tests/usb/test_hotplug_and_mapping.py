"""Which USB devices are recorders (allow-list), hot-plug diffs, and USB device -> disk -> mount."""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import pytest

from device_drivers.usb.hotplug import AllowList, UsbDevice, UsbWatcher, diff_devices
from device_drivers.usb.mapping import (
    block_devices_of,
    port_of_mount,
    read_mountinfo,
    sg_nodes_of,
    volume_by_label,
    volumes_of,
)
from device_drivers.usb.profiles import shipped_profiles
from device_drivers.usb.vendor_driver import SysfsLocator
from tests.usb.conftest import E12_ALLOW, USB, make_recorder, protocol_for
from tests.usb.fakesys import FakeSys
from tests.usb.sysfs import scan_sysfs


@pytest.fixture
def fake(tmp_path: Path) -> FakeSys:
    return FakeSys(tmp_path)


@pytest.fixture
def allow() -> AllowList:
    return AllowList.from_profiles(shipped_profiles(), [E12_ALLOW])


def station_bus(fake: FakeSys, tmp_path: Path) -> dict[str, Path]:
    """A DV16 recorder, an Ambarella recorder and a plain USB stick, the stick mounted."""
    dv16 = fake.usb("1-3", 0x1D6B, 0x0101, product="DV16")
    fake.disk(dv16, vendor="DV16", model="Device", rev="V1.00", partition=False)
    amb = fake.usb("1-4", 0x4255, 0x0001, serial="AMBUSB01")
    stick = fake.usb("1-6", 0x0781, 0x5567, serial="4C530001", product="Cruzer Blade")
    node = fake.disk(stick, vendor="SanDisk", model="Cruzer Blade")
    fake.mount(node, tmp_path / "media" / "MY STICK", label="MY STICK")
    return {"dv16": dv16, "ambarella": amb, "stick": stick}


def test_allow_list_matches_vid_pid_and_scsi_strings(allow: AllowList) -> None:
    assert allow.profile_for(USB["dv16"]) == "dv16"  # by "DV16 Device V1.00", whatever its VID:PID
    assert allow.profile_for(USB["ambarella"]) == "ambarella"
    assert allow.profile_for(USB["e12"]) == "e12"  # configured: 2e04:c025=e12
    stick = UsbDevice(bus=1, port_path="1-6", vendor_id=0x0781, product_id=0x5567, scsi=("SanDisk Cruzer Blade 1.00",))
    assert allow.profile_for(stick) is None
    with pytest.raises(ValueError, match="expected VID:PID=profile"):
        AllowList.from_profiles(shipped_profiles(), ["0781:5567=nosuch"])


def test_scan_sysfs_reads_ids_strings_and_scsi_luns(fake: FakeSys, tmp_path: Path) -> None:
    station_bus(fake, tmp_path)
    found = {d.port_path: d for d in scan_sysfs(fake.sysfs)}
    assert set(found) == {"1-3", "1-4", "1-6"}
    assert found["1-3"].scsi == ("DV16 Device V1.00",)
    assert (found["1-4"].vidpid, found["1-4"].serial) == ("4255:0001", "AMBUSB01")
    assert found["1-6"].product == "Cruzer Blade"


def test_diff_devices() -> None:
    a, b = USB["dv16"], USB["ambarella"]
    assert diff_devices({a.key: a}, {b.key: b}) == ([b], [a])


def test_watcher_reports_recorders_and_ignores_and_logs_a_usb_stick(
    fake: FakeSys, tmp_path: Path, allow: AllowList, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="device_drivers.usb.hotplug")
    events: queue.Queue[tuple[str, str, str | None]] = queue.Queue()
    ignored: list[UsbDevice] = []
    watcher = UsbWatcher(
        allow,
        lambda d, p: events.put(("added", d.port_path, p)),
        lambda d: events.put(("removed", d.port_path, None)),
        scanner=lambda: scan_sysfs(fake.sysfs),
        on_ignored=ignored.append,
        use_udev=False,
        poll_interval=0.05,
        debounce=0.01,
    )
    with watcher:
        assert watcher.mechanism == "poll"
        station_bus(fake, tmp_path)
        got = {events.get(timeout=3) for _ in range(2)}
        assert got == {("added", "1-3", "dv16"), ("added", "1-4", "ambarella")}
        (fake.sysfs / "bus" / "usb" / "devices" / "1-4").unlink()  # the Ambarella recorder is unplugged
        assert events.get(timeout=3) == ("removed", "1-4", None)
    assert [d.port_path for d in ignored] == ["1-6"]
    assert "ignored USB device 0781:5567 Cruzer Blade on port 1-6" in caplog.text
    assert "rule art. 11" in caplog.text
    assert events.empty()


def test_watcher_rescans_once_for_a_burst_of_events(allow: AllowList) -> None:
    calls: list[int] = []
    done = threading.Event()

    def scanner() -> list[UsbDevice]:
        calls.append(1)
        if len(calls) >= 2:
            done.set()
        return []

    watcher = UsbWatcher(
        allow, lambda d, p: None, lambda d: None, scanner=scanner, use_udev=False, poll_interval=3600, debounce=0.1
    )
    with watcher:
        for _ in range(20):
            watcher.notify_change()
        assert done.wait(2)
    assert 2 <= len(calls) <= 3  # the start scan, then one debounced rescan (two on a slow machine), not 20


def test_usb_device_to_block_device_to_mount_point(fake: FakeSys, tmp_path: Path) -> None:
    bus = station_bus(fake, tmp_path)
    blocks = block_devices_of(bus["stick"])
    assert [(b.name, b.partition) for b in blocks] == [("sdc", False), ("sdc1", True)]
    assert sg_nodes_of(bus["stick"]) == ["/dev/sg7"]
    (vol,) = volumes_of(bus["stick"], mountinfo=fake.mountinfo, by_label=fake.by_label)
    assert (vol.block.name, vol.mount_point, vol.label) == ("sdc1", tmp_path / "media" / "MY STICK", "MY STICK")
    assert volumes_of(bus["dv16"], mountinfo=fake.mountinfo) == []  # its control LUN is not mounted
    assert port_of_mount(tmp_path / "media" / "MY STICK", sysfs=fake.sysfs, mountinfo=fake.mountinfo) == "1-6"
    assert port_of_mount(tmp_path / "elsewhere", sysfs=fake.sysfs, mountinfo=fake.mountinfo) is None
    found = volume_by_label({"MY STICK"}, sysfs=fake.sysfs, mountinfo=fake.mountinfo, by_label=fake.by_label)
    assert found is not None and found.mount_point == tmp_path / "media" / "MY STICK"
    assert read_mountinfo(fake.mountinfo)[-1][1] == tmp_path / "media" / "MY STICK"  # \040 unescaped


def test_the_recorder_disk_is_found_by_port_first_then_by_label(fake: FakeSys, tmp_path: Path) -> None:
    from device_drivers.usb.vendor_driver import handshake

    recorder = make_recorder("ambarella")
    hs = handshake(protocol_for(recorder), device=USB["ambarella"], passwords=lambda s: None)
    locate = SysfsLocator(fake.sysfs, fake.mountinfo, fake.by_label)
    assert locate(hs) is None
    # re-enumerated in disk mode on the same port, with a label that says nothing useful
    disk_mode = fake.usb("1-4", 0x4255, 0x0002)
    fake.mount(fake.disk(disk_mode, vendor="Ambarel", model="Disk"), tmp_path / "media" / "NO NAME", "NO NAME")
    assert locate(hs) == tmp_path / "media" / "NO NAME"
    # another port: only the label (the device ID) can say it is this recorder
    other = FakeSys(tmp_path / "other")
    elsewhere = other.usb("2-1", 0x4255, 0x0002)
    other.mount(
        other.disk(elsewhere, vendor="Ambarel", model="Disk"), tmp_path / "media" / "AMB20260001", "AMB20260001"
    )
    assert SysfsLocator(other.sysfs, other.mountinfo, other.by_label)(hs) == tmp_path / "media" / "AMB20260001"
