"""Simulated USB recorders of each shipped family, the volume each brings up in disk mode, stations."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_wire.documents import key_id, public_key_b64
from device_drivers.usb.hotplug import UsbDevice
from device_drivers.usb.profiles import Profile, shipped_profiles
from device_drivers.usb.protocol import RecorderProtocol, open_protocol
from device_drivers.usb.scsi import BulkOnlyScsi
from device_drivers.usb.simulators import (
    AmbarellaRecorder,
    Dv16BulkOnly,
    Dv16Recorder,
    E12Link,
    E12Recorder,
    SimulatedRecorder,
)
from device_drivers.usb.transport import BulkFrames
from ingest_agent.client import StationCredentials, enrol
from ingest_agent.config import AgentSettings
from ingest_agent.transfer import Station
from tests.support.live import LiveServer, free_port

PASSWORD = "k7Q2pX"  # what the bureau configured; no family has a built-in default
#: Simulated hangs fail at once in process; over TCP the margin keeps a loaded CI machine from timing out.
FAST = {"read": 3.0, "write": 3.0, "reenumerate": 2.0, "settle": 0.0}

#: USB identities the simulated recorders show on the bus (e12's VID:PID is configured, not shipped).
USB = {
    "dv16": UsbDevice(
        bus=1,
        port_path="1-3",
        vendor_id=0x1D6B,
        product_id=0x0101,
        address=5,
        manufacturer="JieLi",
        product="DV16",
        scsi=("DV16 Device V1.00",),
    ),
    "ambarella": UsbDevice(bus=1, port_path="1-4", vendor_id=0x4255, product_id=0x0001, address=6, serial="AMBUSB01"),
    "e12": UsbDevice(bus=1, port_path="1-5", vendor_id=0x2E04, product_id=0xC025, address=7, serial="E12USB01"),
}
E12_ALLOW = "2e04:c025=e12"


def fast_profile(name: str, **changes: Any) -> Profile:
    profile = shipped_profiles()[name]
    return profile.with_overrides(timeouts={**FAST, **changes.pop("timeouts", {})}, **changes)


def make_recorder(family: str, **state: Any) -> SimulatedRecorder:
    cls = {"dv16": Dv16Recorder, "ambarella": AmbarellaRecorder, "e12": E12Recorder}[family]
    state.setdefault("password", PASSWORD)
    return cls(profile=fast_profile(family), **state)  # type: ignore[no-any-return]


def protocol_for(recorder: SimulatedRecorder, *, bulk_only: bool = False) -> RecorderProtocol:
    """The station's side of the control channel to a simulated recorder (in process)."""
    profile: Profile = recorder.profile  # type: ignore[attr-defined]
    if isinstance(recorder, Dv16Recorder):
        transport: Any = (
            BulkOnlyScsi(Dv16BulkOnly(recorder), endpoint_out=1, endpoint_in=0x81) if bulk_only else recorder
        )
    elif isinstance(recorder, AmbarellaRecorder):
        transport = BulkFrames(recorder, endpoint_out=1, endpoint_in=0x81, reply_size=64)
    else:
        transport = E12Link(recorder)  # type: ignore[arg-type]
    return open_protocol(profile, transport)


@dataclass
class DiskVolume:
    """The recorder's card as the station mounts it in disk mode: a directory named by its label."""

    root: Path
    files: dict[str, bytes]

    def snapshot(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()
        }


def disk_maker(
    media: Path, label: str, serial: str, officer: str = "102345", count: int = 2
) -> tuple[Callable[[], None], DiskVolume]:
    """``on_disk_mode`` for a simulator: writes the volume (the kernel mounting the re-enumerated disk)."""
    vol = DiskVolume(media / label, {})
    for seq in range(1, count + 1):
        rel = f"DCIM/20261120/{serial}_{officer}_2026112009{30 + seq:02d}00_{seq:04d}.MP4"
        vol.files[rel] = os.urandom(50_000 * seq)

    def mount() -> None:
        staging = media.parent / f".staging-{label}"
        for rel, data in vol.files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(data)
        staging.rename(vol.root)  # appears at once, as a mount does

    return mount, vol


@pytest.fixture
def media(tmp_path: Path) -> Path:
    m = tmp_path / "media"
    m.mkdir()
    return m


def usb_settings(tmp_path: Path, server_url: str, **overrides: Any) -> AgentSettings:
    values: dict[str, Any] = dict(
        server_url=server_url,
        data_dir=tmp_path / "agent",
        stability_seconds=0.0,
        spool_reserve_bytes=0,
        retry_attempts=2,
        retry_base_delay=0.02,
        upload_resume_attempts=2,
        progress_interval=0.0,
        station_name="usb-station",
        usb_docking=True,
        usb_allow=[E12_ALLOW],
        device_passwords_family={"dv16": PASSWORD, "e12": PASSWORD},
        usb_reenumerate_timeout_seconds=2.0,
    )
    values.update(overrides)
    settings = AgentSettings(**values)
    settings.prepare_dirs()
    return settings


@pytest.fixture
def online_station(tmp_path: Path, live_server: LiveServer) -> Iterator[Station]:
    settings = usb_settings(tmp_path, live_server.url)
    enrol(live_server.url, live_server.enrolment_code("usb-station"), station_file=settings.station_file)
    station = Station.open(settings)
    yield station
    station.close()


@pytest.fixture
def offline_station(tmp_path: Path) -> Iterator[Station]:
    """A station whose server is not running: enough for docks that fail before any upload."""
    settings = usb_settings(tmp_path, f"http://127.0.0.1:{free_port()}", retry_attempts=1)
    key = Ed25519PrivateKey.generate().public_key()
    StationCredentials(
        station_id="1",
        station_name="usb-station",
        token="cus_s_test",
        server_public_key=public_key_b64(key),
        server_key_id=key_id(key),
        server_url=settings.server_url,
    ).save(settings.station_file)
    station = Station.open(settings)
    yield station
    station.close()
