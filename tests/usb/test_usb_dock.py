"""Docking USB recorders end to end: plug-in -> handshake -> info -> clock -> disk -> ingest -> server."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from device_drivers.usb.hotplug import UsbDevice, UsbWatcher
from device_drivers.usb.protocol import RecorderProtocol, open_protocol
from device_drivers.usb.simulators import E12Recorder, E12Server, SimulatedRecorder
from device_drivers.usb.socket_transport import SocketFrames
from device_drivers.usb.vendor_driver import Step
from ingest_agent.journal import TransferState
from ingest_agent.progress import DockProgress
from ingest_agent.station_clock import StationClock
from ingest_agent.transfer import Station
from ingest_agent.usb_dock import UsbDock
from tests.support.live import LiveServer
from tests.usb.conftest import PASSWORD, USB, disk_maker, fast_profile, make_recorder, protocol_for
from tests.usb.sysfs import RootsLocator

SYNCED = StationClock(synchronized=True, offset_seconds=0.002, max_error_seconds=0.05, source="test")


class Bus:
    """The station's USB bus as the watcher scans it: plugging and unplugging simulated devices."""

    def __init__(self) -> None:
        self.devices: dict[str, UsbDevice] = {}
        self.lock = threading.Lock()

    def plug(self, device: UsbDevice) -> None:
        with self.lock:
            self.devices[device.port_path] = device

    def scan(self) -> list[UsbDevice]:
        with self.lock:
            return list(self.devices.values())


class Progress:
    def __init__(self) -> None:
        self.seen: list[DockProgress] = []
        self.lock = threading.Lock()

    def __call__(self, p: DockProgress) -> None:
        with self.lock:
            self.seen.append(p)

    def states(self, serial: str) -> list[str]:
        """Distinct states in order for one recorder (by serial, once the handshake told it)."""
        tids = {p.transfer_id for p in self.seen if p.serial == serial}
        out: list[str] = []
        for p in self.seen:
            if p.transfer_id in tids and (not out or out[-1] != p.state):
                out.append(p.state)
        return out


def make_dock(
    station: Station,
    recorders: dict[str, SimulatedRecorder],
    media: Path,
    progress: Progress,
    servers: dict[str, tuple[str, int]] | None = None,
) -> UsbDock:
    def connect(profile, device: UsbDevice) -> RecorderProtocol:  # type: ignore[no-untyped-def]
        recorder = recorders[device.port_path]
        if servers and device.port_path in servers:  # the E12 family over a real TCP socket
            return open_protocol(profile, SocketFrames(*servers[device.port_path]))
        return protocol_for(recorder)

    profiles = {name: fast_profile(name) for name in USB}
    return UsbDock(
        station,
        profiles=profiles,
        listener=progress,
        connect=connect,
        locate=RootsLocator([media]),
        clock=lambda: SYNCED,
    )


def dock_all(dock: UsbDock, bus: Bus, devices: list[UsbDevice], timeout: float = 20) -> None:
    watcher = UsbWatcher(
        dock.allow, dock.on_added, dock.on_removed, scanner=bus.scan, use_udev=False, poll_interval=0.05, debounce=0.01
    )
    with watcher:
        for device in devices:
            bus.plug(device)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(dock.reports) + len(dock.failures) < len(devices):
            time.sleep(0.05)
        dock.join(timeout)


def server_paths(server: LiveServer, serial: str) -> set[str]:
    page = server.get("/api/v1/recordings", params={"device_serial": serial, "limit": 100}).json()
    return {r["original_path"] for r in page["items"]}


def test_two_recorders_docked_at_once_end_to_end(
    online_station: Station, live_server: LiveServer, media: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dv16 = make_recorder("dv16")
    e12: E12Recorder = make_recorder(
        "e12",
        info=make_recorder("e12").info.__class__(  # type: ignore[assignment]
            "E120007", "204060", "李四", "330100000002", "稽查支队"
        ),
        id_code="E12ID7",
    )
    dv16.on_disk_mode, dv16_disk = disk_maker(media, "ZFY_DSJ0001", "DSJ0001")
    e12.on_disk_mode, e12_disk = disk_maker(media, "E120007", "E120007", officer="204060", count=3)
    e12.reenumerate_delay = 0.3  # the disk comes back a moment after the switch
    progress = Progress()
    with E12Server(e12) as server:
        dock = make_dock(online_station, {"1-3": dv16, "1-5": e12}, media, progress, servers={"1-5": server.address})
        dock_all(dock, Bus(), [USB["dv16"], USB["e12"]])

    assert not dock.failures
    reports = {r.serial: r for r in dock.reports}
    assert set(reports) == {"DSJ0001", "E120007"}
    for serial, disk in (("DSJ0001", dv16_disk), ("E120007", e12_disk)):
        assert reports[serial].state == TransferState.DONE, reports[serial].error
        assert server_paths(live_server, serial) == set(disk.files)
        assert disk.snapshot() == disk.files  # read-only: the station wipes nothing unless told to
    # every step was shown, in order
    states = progress.states("E120007")
    for expected in (
        Step.CONNECTING,
        Step.LOGGING_IN,
        Step.READING_INFO,
        Step.READING_CLOCK,
        Step.SETTING_CLOCK,
        Step.SWITCHING,
        Step.WAITING_FOR_VOLUME,
        TransferState.COPYING,
        TransferState.DONE,
    ):
        assert expected in states, states
    assert states.index(Step.READING_CLOCK) < states.index(Step.SWITCHING) < states.index(TransferState.COPYING)
    # identity from the device's info block, clock offset measured before it was set
    payload = online_station.journal.transfer(reports["E120007"].transfer_id).payload
    assert payload["device"]["family"] == "e12"
    assert payload["officer"] == {"number": "204060", "name": "李四"}
    status = payload["device_status"]
    assert status["battery_percent"] == 76
    assert status["clock"] is not None and status["read_at"] is not None
    assert payload["station_clock"] == SYNCED.payload()
    offsets = live_server.get("/api/v1/devices/E120007/clock-offsets")  # what the server recorded
    assert offsets.status_code == 200, offsets.text
    assert offsets.json()[0]["offset_s"] == pytest.approx(-95, abs=2)
    assert e12.clock_set_to is not None  # then set from the station (whole seconds, as the family sends them)
    assert abs((e12.now() - datetime.now(UTC)).total_seconds()) < 2
    assert PASSWORD not in caplog.text


def run_failing(station: Station, media: Path, family: str, **state: object) -> tuple[UsbDock, Progress]:
    recorder = make_recorder(family, **state)
    recorder.on_disk_mode = disk_maker(media, "ZFY_DSJ0001", "DSJ0001")[0]
    progress = Progress()
    dock = make_dock(station, {USB[family].port_path: recorder}, media, progress)
    dock_all(dock, Bus(), [USB[family]])
    return dock, progress


@pytest.mark.parametrize(
    ("family", "state", "reason"),
    [
        ("dv16", {"password": "999999"}, "CHECK_PWD_FAILED"),
        ("e12", {"password": "999999"}, "CHECK_PWD_FAILED"),
        ("dv16", {"card": False}, "MSDC_FAILED: no SD card"),
        ("e12", {"vanish_after": 4}, "device gone"),
        ("ambarella", {"hang": {"enter_mass_storage"}}, "did not come back as a disk"),
        ("dv16", {"reenumerates": False}, "did not come back as a disk within 2 s"),
        ("e12", {"hang": {"get_info"}}, "timeout"),
    ],
    ids=[
        "dv16-wrong-password",
        "e12-wrong-password",
        "missing-card",
        "gone-mid-handshake",
        "ambarella-no-reply",
        "never-re-enumerates",
        "timeout",
    ],
)
def test_a_failed_dock_shows_the_reason_and_transfers_nothing(
    offline_station: Station, media: Path, family: str, state: dict[str, object], reason: str
) -> None:
    dock, progress = run_failing(offline_station, media, family, **state)
    assert dock.reports == []
    ((_device, why),) = dock.failures
    assert reason in why
    last = progress.seen[-1]
    assert last.state == TransferState.FAILED and reason in last.message
    assert offline_station.journal.transfers() == []  # nothing journaled, nothing copied


def test_no_password_configured_fails_without_trying_a_default(offline_station: Station, media: Path) -> None:
    offline_station.settings.device_passwords_family = {}
    dock, progress = run_failing(offline_station, media, "e12")
    assert "no device password configured for the e12 family" in dock.failures[0][1]
    assert progress.seen[-1].state == TransferState.FAILED


def test_a_plain_usb_stick_is_ignored_and_logged(
    offline_station: Station, media: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stick = UsbDevice(
        bus=1,
        port_path="1-6",
        vendor_id=0x0781,
        product_id=0x5567,
        serial="4C530001",
        product="Cruzer Blade",
        scsi=("SanDisk Cruzer Blade 1.00",),
    )
    dock = make_dock(offline_station, {"1-3": make_recorder("dv16")}, media, Progress())
    bus = Bus()
    watcher = UsbWatcher(
        dock.allow, dock.on_added, dock.on_removed, scanner=bus.scan, use_udev=False, poll_interval=0.05, debounce=0.01
    )
    with watcher:
        bus.plug(stick)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and "ignored USB device" not in caplog.text:
            time.sleep(0.05)
    assert "ignored USB device 0781:5567 Cruzer Blade on port 1-6" in caplog.text
    assert dock.reports == [] and dock.failures == [] and offline_station.journal.transfers() == []


def test_passwords_come_per_serial_before_family_and_from_a_private_file(
    offline_station: Station, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    settings = offline_station.settings
    settings.device_passwords_serial = {"E12USB01": SecretStr("serial-pw")}
    assert settings.device_password("e12", ["E12USB01"]) == "serial-pw"
    assert settings.device_password("e12", ["other"]) == PASSWORD
    assert settings.device_password("ambarella", []) is None
    f = tmp_path / "passwords.json"
    f.write_text('{"family": {"ambarella": "file-pw"}}')
    f.chmod(0o644)
    settings.device_passwords_file = f
    with pytest.raises(PermissionError):
        settings.device_password("ambarella", [])
    f.chmod(0o600)
    assert settings.device_password("ambarella", []) == "file-pw"
    assert "serial-pw" not in repr(settings) and PASSWORD not in repr(settings)
