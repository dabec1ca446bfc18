"""The driver contract, checked the same way on every file-volume family."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device_drivers import (
    DeviceGoneError,
    DeviceStatus,
    DriverError,
    FolderDriver,
    MassStorageDriver,
    NotSupportedError,
    RecorderDriver,
)
from device_drivers.simulator import SimulatedVolume

pytestmark = pytest.mark.ffmpeg

FAMILIES: dict[str, type[RecorderDriver]] = {"mass_storage": MassStorageDriver, "folder": FolderDriver}


@pytest.fixture(params=sorted(FAMILIES))
def driver(request: pytest.FixtureRequest, volume: SimulatedVolume) -> Iterator[RecorderDriver]:
    with FAMILIES[request.param](volume.root) as d:
        yield d


def test_both_families_recognise_a_recorder_volume(volume: SimulatedVolume) -> None:
    assert MassStorageDriver.probe(volume.root)
    assert FolderDriver.probe(volume.root)


def test_listing_matches_what_the_recorder_wrote(driver: RecorderDriver, volume: SimulatedVolume) -> None:
    entries = driver.list_recordings()
    assert [e.path for e in entries] == [s.path for s in volume.written]
    for entry, segment in zip(entries, volume.written, strict=True):
        assert entry.size == volume.file(segment).stat().st_size > 0
        assert entry.mtime == segment.ended_at  # the recorder closes the file when the segment ends
        assert entry.started_at == segment.started_at
        assert (entry.sequence, entry.serial, entry.officer_no) == (segment.seq, "DSJ0001", "102345")
        assert entry.mtime.tzinfo is UTC
    assert driver.rejected == []


def test_identify(driver: RecorderDriver) -> None:
    identity = driver.identify()
    assert (identity.serial, identity.officer_no, identity.family) == ("DSJ0001", "102345", driver.family)
    assert driver.identity_warnings == []


def test_open_reads_the_exact_bytes_unbuffered_and_read_only(driver: RecorderDriver, volume: SimulatedVolume) -> None:
    segment = volume.written[1]
    assert segment.path is not None
    with driver.open_recording(segment.path) as f:
        assert not isinstance(f, io.BufferedIOBase)
        assert f.read() == volume.file(segment).read_bytes()
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")


def test_stat_matches_listing(driver: RecorderDriver) -> None:
    for entry in driver.list_recordings():
        assert driver.stat_recording(entry.path) == (entry.size, entry.mtime)


def test_delete_removes_only_that_recording(driver: RecorderDriver, volume: SimulatedVolume) -> None:
    first, *rest = volume.written
    assert first.path is not None
    driver.delete_recording(first.path)
    assert not volume.file(first).exists()
    assert [e.path for e in driver.list_recordings()] == [s.path for s in rest]


def test_a_missing_recording_is_not_a_missing_device(driver: RecorderDriver) -> None:
    with pytest.raises(FileNotFoundError):
        driver.open_recording("DCIM/20261120/NOPE.MP4")


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.list_recordings(),
        lambda d: d.open_recording("DCIM/20261120/DSJ0001_102345_20261120093000_0001.MP4"),
        lambda d: d.stat_recording("DCIM/20261120/DSJ0001_102345_20261120093000_0001.MP4"),
        lambda d: d.delete_recording("DCIM/20261120/DSJ0001_102345_20261120093000_0001.MP4"),
        lambda d: d.read_status(),
        lambda d: d.identify(),
    ],
    ids=["list", "open", "stat", "delete", "status", "identify"],
)
@pytest.mark.parametrize("how", ["unplugged", "replaced"])
def test_a_vanished_volume_is_device_gone(
    driver: RecorderDriver, volume: SimulatedVolume, call: Callable[[RecorderDriver], object], how: str
) -> None:
    if how == "replaced":  # another volume mounted at the same path: not the one we were handed
        volume.root.rename(volume.root.with_name("old"))
        (volume.root / "DCIM" / "20261120").mkdir(parents=True)
    else:
        shutil.rmtree(volume.root)
    with pytest.raises(DeviceGoneError):
        call(driver)


def test_opening_a_driver_on_a_missing_volume_is_device_gone(tmp_path: Path) -> None:
    with pytest.raises(DeviceGoneError):
        FolderDriver(tmp_path / "gone", serial="X")


def test_close_always_runs_and_is_final(volume: SimulatedVolume) -> None:
    with pytest.raises(RuntimeError), MassStorageDriver(volume.root) as d:
        raise RuntimeError("the agent crashed mid-transfer")
    assert d.closed
    d.close()  # twice is fine
    with pytest.raises(DriverError):
        d.list_recordings()


def test_plain_disks_report_storage_but_no_clock_or_battery(volume: SimulatedVolume) -> None:
    with MassStorageDriver(volume.root) as d:
        status = d.read_status()
        assert status.storage_total_bytes and status.storage_free_bytes is not None
        assert status.storage_free_bytes <= status.storage_total_bytes
        assert (status.clock, status.battery_percent, status.clock_offset_seconds) == (None, None, None)
        with pytest.raises(NotSupportedError):
            d.set_clock(datetime.now(UTC))
    with FolderDriver(volume.root) as d:
        assert d.read_status() == DeviceStatus()


def test_clock_offset() -> None:
    host = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert DeviceStatus(clock=host + timedelta(seconds=90), read_at=host).clock_offset_seconds == 90.0
    assert DeviceStatus(clock=host - timedelta(minutes=5), read_at=host).clock_offset_seconds == -300.0
