"""Who a volume belongs to, which family takes it, and what is said when the evidence disagrees.

Identity comes from names only, so these volumes hold empty files with recorder names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from device_drivers import (
    DriverError,
    FolderDriver,
    IdentityError,
    MassStorageDriver,
    driver_for,
)

A1 = "DCIM/20261120/DSJ0001_102345_20261120093000_0001.MP4"
A2 = "DCIM/20261120/DSJ0001_102345_20261120093500_0002.MP4"
B3 = "DCIM/20261120/DSJ0002_102345_20261120094000_0003.MP4"  # another serial
C3 = "DCIM/20261121/DSJ0001_204567_20261121080000_0003.MP4"  # another officer, the next day
VENDOR = "DCIM/20261120/20261120_093000_0001.MP4"  # names without serial


def make_volume(root: Path, *paths: str) -> Path:
    (root / "DCIM").mkdir(parents=True, exist_ok=True)
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).touch()
    return root


def test_mass_storage_serial_comes_from_the_label(tmp_path: Path) -> None:
    root = make_volume(tmp_path / "ZFY_DSJ0001", A1, A2)
    with MassStorageDriver(root, model="DSJ-V1") as d:
        identity = d.identify()
    assert (identity.serial, identity.officer_no, identity.volume_label) == (
        "DSJ0001",
        "102345",
        "ZFY_DSJ0001",
    )
    assert (identity.family, identity.model) == ("mass_storage", "DSJ-V1")
    assert d.identity_warnings == []


def test_the_label_wins_over_names_but_the_disagreement_is_recorded(tmp_path: Path) -> None:
    root = make_volume(tmp_path / "ZFY_DSJ0099", A1, B3)
    with MassStorageDriver(root) as d:
        assert d.identify().serial == "DSJ0099"
        assert len(d.identity_warnings) == 1
        assert "DSJ0001" in d.identity_warnings[0] and "DSJ0002" in d.identity_warnings[0]


def test_a_label_without_serial_takes_it_from_the_names(tmp_path: Path) -> None:
    root = make_volume(tmp_path / "CAM01", A1, A2)
    patterns = [r"CAM\d{2}"]
    assert MassStorageDriver.probe(root, label_patterns=patterns)
    with MassStorageDriver(root, label_patterns=patterns) as d:
        assert d.identify().serial == "DSJ0001"


@pytest.mark.parametrize("paths", [(A1, B3), (VENDOR,), ()], ids=["names-disagree", "names-without-serial", "empty"])
def test_no_trustworthy_serial_is_an_error(tmp_path: Path, paths: tuple[str, ...]) -> None:
    root = make_volume(tmp_path / "CAM01", *paths)
    with MassStorageDriver(root, label_patterns=[r"CAM\d{2}"]) as d, pytest.raises(IdentityError):
        d.identify()
    with FolderDriver(root) as d, pytest.raises(IdentityError):
        d.identify()


def test_several_officers_take_the_latest_and_warn(tmp_path: Path) -> None:
    root = make_volume(tmp_path / "ZFY_DSJ0001", A1, C3, A2)
    with MassStorageDriver(root) as d:
        assert d.identify().officer_no == "204567"
        assert any("204567" in w and "102345" in w for w in d.identity_warnings)


def test_folder_identity_from_options_overrides_names(tmp_path: Path) -> None:
    root = make_volume(tmp_path / "import", A1, VENDOR)
    with FolderDriver(root, serial="DSJ0007", officer_no="102345", officer_name="张三", unit_no="U1") as d:
        identity = d.identify()
    assert (identity.serial, identity.officer_no, identity.officer_name) == ("DSJ0007", "102345", "张三")
    assert (identity.unit_no, identity.family, identity.volume_label) == ("U1", "folder", None)
    assert d.identity_warnings == ["file names carry serial(s) ['DSJ0001'], the configured serial is DSJ0007"]


def test_folder_identity_from_names(tmp_path: Path) -> None:
    with FolderDriver(make_volume(tmp_path / "sdcard", A1, A2, VENDOR)) as d:
        identity = d.identify()
    assert (identity.serial, identity.officer_no) == ("DSJ0001", "102345")


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("ZFY_DSJ0001", lambda r: make_volume(r), True),
        ("ZFY-DSJ0001", lambda r: make_volume(r), True),
        ("ZFY_DSJ0001", lambda r: (r / "dcim").mkdir(parents=True), True),  # FAT does not care about case
        ("USBSTICK", lambda r: make_volume(r), False),  # label not on the allow-list
        ("ZFY_DSJ0001", lambda r: r.mkdir(), False),  # no data folder
        ("ZFY_DSJ0001", lambda r: (r.mkdir(), (r / "DCIM").symlink_to(r.parent)), False),
        ("ZFY_DSJ0001", lambda r: r.write_bytes(b""), False),  # not a directory at all
        ("ZFY_DSJ0001", lambda r: None, False),  # nothing there
    ],
    ids=["label", "dash", "lowercase-dcim", "other-label", "no-dcim", "dcim-symlink", "file", "missing"],
)
def test_mass_storage_probe(tmp_path: Path, name: str, make: Callable[[Path], object], expected: bool) -> None:
    root = tmp_path / name
    make(root)
    assert MassStorageDriver.probe(root) is expected


def test_registry_prefers_mass_storage_then_folder(tmp_path: Path) -> None:
    recorder = make_volume(tmp_path / "ZFY_DSJ0001", A1)
    card = make_volume(tmp_path / "sdcard", A1)
    with driver_for(recorder, serial="IGNORED") as d:  # serial= is a folder option: not for a labelled disk
        assert isinstance(d, MassStorageDriver)
        assert d.identify().serial == "DSJ0001"
    with driver_for(card, serial="DSJ0009") as d:
        assert isinstance(d, FolderDriver)
        assert d.identify().serial == "DSJ0009"
    with driver_for(recorder, prefer="folder") as d:
        assert isinstance(d, FolderDriver)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prefer": "mass_storage"}, DriverError),  # a plain folder is no mass-storage recorder
        ({"prefer": "scsi_dv16"}, DriverError),  # unknown family
        ({"serail": "DSJ0001"}, TypeError),  # a typo is not silently ignored
    ],
)
def test_registry_refuses(tmp_path: Path, kwargs: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        driver_for(make_volume(tmp_path / "sdcard", A1), **kwargs)


def test_drivers_refuse_options_of_another_family(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        MassStorageDriver(make_volume(tmp_path / "ZFY_DSJ0001"), serial="DSJ0001")


def test_identify_then_list_walks_the_volume_once_and_a_later_listing_sees_new_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from device_drivers import volume as volume_mod

    root = make_volume(tmp_path / "ZFY_DSJ0001", A1, A2)
    walks = 0
    real_walk = volume_mod.VolumeRoot.walk

    def counting_walk(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal walks
        walks += 1
        return real_walk(self, *args, **kwargs)

    monkeypatch.setattr(volume_mod.VolumeRoot, "walk", counting_walk)
    clock = [1000.0]
    monkeypatch.setattr(volume_mod.time, "monotonic", lambda: clock[0])
    with MassStorageDriver(root) as d:
        d.identify()
        assert [e.path for e in d.list_recordings()] == [A1, A2]
        assert walks == 1  # the listing identify() read is the one handed out
        make_volume(root, C3)
        assert [e.path for e in d.list_recordings()] == [A1, A2, C3]  # never handed out twice
        assert walks == 2
        d.identify()
        (root / A2).unlink()
        clock[0] += volume_mod.IDENTIFY_LISTING_TTL + 0.1  # too old to stand in: walked again
        assert [e.path for e in d.list_recordings()] == [A1, C3]
        assert walks == 4
