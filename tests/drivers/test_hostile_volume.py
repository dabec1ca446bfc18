"""A volume may be hostile or just odd: nothing on it may lead the agent outside it or hang it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device_drivers import FolderDriver, MassStorageDriver, RecorderDriver, UnsafeEntryError
from device_drivers.simulator import SimulatedVolume

pytestmark = pytest.mark.ffmpeg

DAY = "DCIM/20261120"
OpenDriver = Callable[[], RecorderDriver]


@pytest.fixture(params=[MassStorageDriver, FolderDriver], ids=["mass_storage", "folder"])
def open_driver(request: pytest.FixtureRequest, volume: SimulatedVolume) -> Iterator[OpenDriver]:
    drivers: list[RecorderDriver] = []

    def open_() -> RecorderDriver:
        drivers.append(request.param(volume.root))
        return drivers[-1]

    yield open_
    for d in drivers:
        d.close()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the volume that a symlink on the volume points at."""
    path = tmp_path / "secret.MP4"
    path.write_bytes(b"not yours")
    return path


def listed(driver: RecorderDriver) -> set[str]:
    return {e.path for e in driver.list_recordings()}


def rejected(driver: RecorderDriver) -> dict[str, str]:
    """What a fresh listing rejected, by printable path."""
    driver.list_recordings()
    return {r.path: r.reason for r in driver.rejected}


def test_symlink_out_of_the_volume_is_neither_listed_nor_openable(
    open_driver: OpenDriver, volume: SimulatedVolume, secret: Path
) -> None:
    (volume.root / "link.MP4").symlink_to(secret)
    (volume.root / DAY / "DSJ0001_102345_20261120093009_0009.MP4").symlink_to(secret)
    d = open_driver()
    assert all("link" not in p and "0009" not in p for p in listed(d))
    assert rejected(d) == {"link.MP4": "symlink", f"{DAY}/DSJ0001_102345_20261120093009_0009.MP4": "symlink"}
    for call in (d.open_recording, d.stat_recording, d.delete_recording):
        with pytest.raises(UnsafeEntryError):
            call("link.MP4")
    assert secret.read_bytes() == b"not yours"


def test_symlinked_directory_is_not_descended(open_driver: OpenDriver, volume: SimulatedVolume, secret: Path) -> None:
    (volume.root / "DCIM" / "outside").symlink_to(secret.parent, target_is_directory=True)
    d = open_driver()
    assert rejected(d) == {"DCIM/outside": "symlink"}
    with pytest.raises(UnsafeEntryError):
        d.open_recording("DCIM/outside/secret.MP4")


@pytest.mark.parametrize(
    "path",
    ["../secret.MP4", "/etc/passwd", f"{DAY}/../../../secret.MP4", "./link.MP4", "a\\b.MP4", "a\x01.MP4", ""],
)
def test_paths_that_could_escape_are_refused_before_touching_the_disk(open_driver: OpenDriver, path: str) -> None:
    with pytest.raises(UnsafeEntryError):
        open_driver().open_recording(path)


def test_fifo_is_rejected_and_opening_it_does_not_hang(open_driver: OpenDriver, volume: SimulatedVolume) -> None:
    os.mkfifo(volume.root / DAY / "PIPE.MP4")
    d = open_driver()
    assert rejected(d) == {f"{DAY}/PIPE.MP4": "fifo"}
    with pytest.raises(UnsafeEntryError):
        d.open_recording(f"{DAY}/PIPE.MP4")  # a blocking open would wait for a writer forever


def test_device_node_is_rejected(open_driver: OpenDriver, volume: SimulatedVolume) -> None:
    try:
        os.mknod(volume.root / DAY / "NULL.MP4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    d = open_driver()
    assert rejected(d) == {f"{DAY}/NULL.MP4": "device node"}
    with pytest.raises(UnsafeEntryError):
        d.open_recording(f"{DAY}/NULL.MP4")


def test_undecodable_and_control_character_names_are_reported_escaped(
    open_driver: OpenDriver, volume: SimulatedVolume
) -> None:
    day = os.fsencode(volume.root / DAY)
    with open(day + b"/BAD\xff\xfe.MP4", "wb") as f:  # not UTF-8
        f.write(b"x")
    (volume.root / DAY / "CTRL\x01.MP4").write_bytes(b"x")
    (volume.root / "ESC\x1b").mkdir()  # a directory with a bad name is not descended either
    (volume.root / "ESC\x1b" / "A.MP4").write_bytes(b"x")
    d = open_driver()
    assert len(listed(d)) == 3
    reasons = rejected(d)
    assert sorted(reasons) == sorted([repr(f"{DAY}/BAD\udcff\udcfe.MP4"), repr(f"{DAY}/CTRL\x01.MP4"), repr("ESC\x1b")])
    assert all(r.startswith("unsafe name: ") for r in reasons.values())
    assert all(p.isprintable() for p in reasons)


def test_longest_legal_name_and_empty_files_are_listed(open_driver: OpenDriver, volume: SimulatedVolume) -> None:
    long_name = "L" * 251 + ".MP4"  # 255 bytes: the most a filesystem and check_device_path allow
    (volume.root / DAY / long_name).write_bytes(b"\0" * 10)
    (volume.root / DAY / "EMPTY.MP4").touch()
    d = open_driver()
    sizes = {e.path: e.size for e in d.list_recordings()}
    assert sizes[f"{DAY}/{long_name}"] == 10
    assert sizes[f"{DAY}/EMPTY.MP4"] == 0  # listed: the agent decides what an empty recording means
    with d.open_recording(f"{DAY}/{long_name}") as f:
        assert f.read() == b"\0" * 10


def test_non_recordings_are_rejected_and_os_junk_is_skipped_silently(
    open_driver: OpenDriver, volume: SimulatedVolume
) -> None:
    root = volume.root
    for junk in (".DS_Store", "Thumbs.db", f"{DAY}/._DSJ0001.MP4", f"{DAY}/THUMBS.DB"):
        (root / junk).write_bytes(b"junk")
    for junk_dir in (
        "System Volume Information",
        ".Trashes",
        ".Spotlight-V100",
        "$RECYCLE.BIN",
        ".Trash-1000",
    ):
        (root / junk_dir).mkdir()
        (root / junk_dir / "deleted.MP4").write_bytes(b"x")
    (root / "LOG").mkdir()
    (root / "LOG" / "DEVICE.LOG").write_text("boot\n")
    (root / DAY / "NOTES.txt").write_text("hello")
    (root / DAY / "PHOTO.JPG").write_bytes(b"\xff\xd8\xff")  # recorders take photos: a recording
    d = open_driver()
    assert f"{DAY}/PHOTO.JPG" in listed(d)
    assert rejected(d) == {
        "LOG/DEVICE.LOG": "not a recording (extension)",
        f"{DAY}/NOTES.txt": "not a recording (extension)",
    }


def test_extension_allow_list_is_configurable(volume: SimulatedVolume) -> None:
    (volume.root / DAY / "CLIP.H264").write_bytes(b"x")
    with MassStorageDriver(volume.root, extensions=["h264"]) as d:
        assert listed(d) == {f"{DAY}/CLIP.H264"}
        assert len(d.rejected) == len(volume.written)
