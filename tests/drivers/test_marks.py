"""The important mark (重要文件标记) read where each family writes it: file name, folder, MP4 tag, a vendor
command; and never taken from a name that only looks like one, a malformed container or a hostile list."""

from __future__ import annotations

import io
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from device_drivers.folder import FolderDriver
from device_drivers.marks import (
    BY_DEVICE_LIST,
    BY_FILE_NAME,
    BY_FOLDER,
    BY_MP4_TAG,
    DEFAULT_MARKS,
    MarkRules,
    MarkRulesError,
    read_mp4_tags,
    tags_of_moov,
)
from device_drivers.mass_storage import MassStorageDriver
from device_drivers.usb.codecs import parse_file_list
from device_drivers.usb.profiles import Profile, ProfileError, profile_from_dict, shipped_profiles
from device_drivers.usb.protocol import open_protocol
from device_drivers.usb.simulators import E12Link, E12Recorder
from device_drivers.usb.vendor_driver import ClockPolicy, UsbRecorderDriver, handshake
from tests.usb.conftest import PASSWORD, USB, fast_profile, make_recorder, protocol_for

#: 2026-11-20 09:30:00 in Beijing
START = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
GA = "DSJ0001_102345_20261120093000_0001"


def families() -> dict[str, MarkRules]:
    """Every family the station reads, with the rules it carries as data."""
    return {"mass_storage": DEFAULT_MARKS, "folder": DEFAULT_MARKS} | {
        name: p.important for name, p in shipped_profiles().items()
    }


@pytest.mark.parametrize("family", sorted(families()))
def test_each_family_reads_its_name_and_folder_marks(family: str) -> None:
    rules = families()[family]
    assert rules.name_tokens, f"{family} declares no name mark"
    token = rules.name_tokens[0]
    assert rules.from_path(f"DCIM/{GA}_{token}.MP4") == (BY_FILE_NAME, f"{GA}.MP4")
    assert rules.from_path(f"DCIM/{token}_20261120_093000_0001.MP4") == (BY_FILE_NAME, "20261120_093000_0001.MP4")
    assert rules.from_path(f"DCIM/{token.lower()}-{GA}.mp4") == (BY_FILE_NAME, f"{GA}.mp4")
    assert rules.from_path(f"DCIM/{GA}.MP4") == (None, f"{GA}.MP4")
    for folder in rules.folders:
        assert rules.from_path(f"DCIM/{folder}/{GA}.MP4") == (BY_FOLDER, f"{GA}.MP4")


@pytest.mark.parametrize(
    "name",
    [
        "DCIM/IMPORTANT_0001.MP4",  # a longer word
        "DCIM/xIMP.MP4",
        "DCIM/IMPx_0001.MP4",
        f"DCIM/{GA[:20]}_IMP_{GA[21:]}.MP4",  # a token in the middle: could be a serial or an officer
        "DCIM/IMP.MP4",  # the whole stem: nothing else in the name
        "DCIM/_IMP.MP4",
        "DCIM/IMP_.MP4",
        "DCIM/ＩＭＰ_0001.MP4",  # fullwidth letters
        "DCIM/ІМР_0001.MP4",  # Cyrillic look-alikes
        "DCIM/IMP\u200b_0001.MP4",  # an invisible character (the driver refuses the name anyway)
        "DCIM/0001.IMP",  # the extension is not the stem
        "DCIM/IMPORTANT/0001.MP4",  # a folder that only starts like one
        "重要文件/0001.MP4",
    ],
)
def test_names_that_only_look_marked_are_not(name: str) -> None:
    assert DEFAULT_MARKS.from_path(name)[0] is None


def test_rules_are_validated_data() -> None:
    assert MarkRules.from_dict({"name_tokens": ["EMR"], "folders": ["紧急"]}).from_path("a/紧急/x.MP4")[0] == BY_FOLDER
    for bad in (
        {"name_tokens": ["I.P"]},  # no regular expressions, no separators
        {"name_tokens": ["IMP_"]},
        {"name_tokens": [""]},
        {"name_tokens": "IMP"},
        {"folders": ["DCIM/IMP"]},
        {"mp4_tags": ["comment"]},
        {"mp4_tags": {"comment": [1]}},
        {"suffixes": ["IMP"]},
    ):
        with pytest.raises(MarkRulesError):
            MarkRules.from_dict(bad, "test")
    data = {k: v for k, v in _profile_dict().items() if k != "important"}
    assert profile_from_dict(data).important == DEFAULT_MARKS  # no key: the defaults
    assert not profile_from_dict({**data, "important": {}}).important  # {}: the family marks nothing
    with pytest.raises(ProfileError, match="important"):
        profile_from_dict({**data, "important": {"name_tokens": ["a b"]}})


def _profile_dict() -> dict[str, object]:
    import json
    from importlib import resources

    return dict(json.loads(resources.files("device_drivers.usb").joinpath("profiles/dv16.json").read_text("utf-8")))


# --- on a volume: names and MP4 tags made with ffmpeg ------------------------------------------------------


def make_mp4(path: Path, *metadata: str, flags: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [a for m in metadata for a in ("-metadata", m)]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-t", "0.4"]
        + list(flags)
        + args
        + [str(path)],
        check=True,
    )
    return path


def test_a_folder_volume_lists_name_folder_and_tag_marks(ffmpeg: None, tmp_path: Path) -> None:
    root = tmp_path / "card"
    dcim = root / "DCIM"
    make_mp4(dcim / f"{GA}_IMP.MP4")
    make_mp4(dcim / "重要" / "DSJ0001_102345_20261120093100_0002.MP4")
    make_mp4(dcim / "DSJ0001_102345_20261120093200_0003.MP4", "comment=IMP")
    make_mp4(dcim / "DSJ0001_102345_20261120093300_0004.MP4", "comment=routine patrol")
    make_mp4(dcim / "DSJ0001_102345_20261120093400_0005.MP4")
    with FolderDriver(root, serial="DSJ0001") as d:
        entries = {e.path: e for e in d.list_recordings()}
    marks = {p.rsplit("/", 1)[-1]: e.important for p, e in entries.items()}
    assert marks == {
        f"{GA}_IMP.MP4": BY_FILE_NAME,
        "DSJ0001_102345_20261120093100_0002.MP4": BY_FOLDER,
        "DSJ0001_102345_20261120093200_0003.MP4": BY_MP4_TAG,
        "DSJ0001_102345_20261120093300_0004.MP4": None,
        "DSJ0001_102345_20261120093400_0005.MP4": None,
    }
    # the mark does not cost the name its meaning: serial, officer, start and sequence still parsed
    marked = entries[f"DCIM/{GA}_IMP.MP4"]
    assert (marked.serial, marked.officer_no, marked.started_at, marked.sequence) == ("DSJ0001", "102345", START, 1)


def test_tag_marks_in_mdta_keys_and_quicktime_atoms(ffmpeg: None, tmp_path: Path) -> None:
    keyed = make_mp4(tmp_path / "a.mp4", "important=1", "comment=重要", flags=("-movflags", "use_metadata_tags"))
    mov = make_mp4(tmp_path / "b.mov", "comment=IMP")
    with keyed.open("rb") as f:
        tags = read_mp4_tags(f, keyed.stat().st_size)
    assert tags["important"] == "1" and tags["comment"] == "重要"
    assert MarkRules.from_dict({"mp4_tags": {"important": ["1"]}}).from_tags(tags)
    with mov.open("rb") as f:
        assert DEFAULT_MARKS.from_tags(read_mp4_tags(f, mov.stat().st_size))
    # a family without tag rules never opens the file for them
    root = tmp_path / "vol"
    make_mp4(root / "DCIM" / "x.mp4", "comment=IMP")
    with FolderDriver(root, serial="S1", important={"name_tokens": ["IMP"]}) as d:
        assert [e.important for e in d.list_recordings()] == [None]


class Counting(io.FileIO):
    read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


def test_tags_are_read_without_reading_the_media_or_the_sample_tables(ffmpeg: None, tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "20"]
        + ["-b:v", "2M", "-metadata", "comment=IMP", str(path)],
        check=True,
    )
    size = path.stat().st_size
    with Counting(path) as f:
        assert DEFAULT_MARKS.from_tags(read_mp4_tags(f, size))
    assert size > 400_000 and f.read_bytes < 4096  # headers and the udta box, not the moov's tables


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00\x08ftyp",
        _box(b"ftyp", b"isom") + struct.pack(">I4s", 0xFFFFFFF0, b"moov"),  # a box larger than the file
        _box(b"ftyp", b"isom") + struct.pack(">I4sQ", 1, b"moov", 2**62),  # a 64-bit size beyond reason
        _box(b"ftyp", b"isom") + struct.pack(">I4s", 4, b"moov"),  # smaller than its own header
        _box(b"moov", _box(b"udta", struct.pack(">I4s", 9999, b"meta"))),  # a child running past its parent
        _box(b"moov", _box(b"udta", _box(b"\xa9cmt", b"\xff\xff"))),  # a text atom claiming 65535 bytes
        _box(b"moov", _box(b"meta", b"\x00" * 4 + _box(b"keys", struct.pack(">II", 0, 10**9)))),
        b"RIFF\x00\x00\x00\x00AVI LIST" * 10,
    ],
)
def test_malformed_containers_carry_no_mark_and_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "DCIM" / "bad.MP4"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with path.open("rb") as f:
        assert not DEFAULT_MARKS.from_tags(read_mp4_tags(f, len(data)))
    assert tags_of_moov(data) is not None
    with FolderDriver(tmp_path, serial="S1") as d:
        assert [e.important for e in d.list_recordings()] == [None]


def test_a_mass_storage_volume_takes_its_family_rules(tmp_path: Path) -> None:
    root = tmp_path / "ZFY_DSJ0001"
    (root / "DCIM" / "EVENT").mkdir(parents=True)
    (root / "DCIM" / "EVENT" / "a.MP4").write_bytes(b"x")
    (root / "DCIM" / "EMR_b.MP4").write_bytes(b"x")
    with MassStorageDriver(root, important=shipped_profiles()["ambarella"].important) as d:
        assert {e.path: e.important for e in d.list_recordings()} == {
            "DCIM/EMR_b.MP4": BY_FILE_NAME,
            "DCIM/EVENT/a.MP4": BY_FOLDER,
        }


# --- through a vendor command: the E12 family lists its marked files --------------------------------------


def listing_profile() -> Profile:
    """The E12 profile of a bureau that captured its recorders' command listing marked files: data, not code."""
    profile = fast_profile("e12")
    return profile.with_overrides(commands={**profile.commands, "list_important": {"code": "E12CMDN040"}})


def test_the_e12_family_lists_marked_files_during_the_handshake(tmp_path: Path) -> None:
    listed = [
        "DCIM/20261120/DSJ0001_102345_20261120093100_0001.MP4",  # by path
        "DSJ0001_102345_20261120093300_0003.MP4",  # by bare name
        "../../evil.MP4",  # hostile entries: dropped, never matched by name either
        "DCIM/20261120/\x1bevil.MP4",
    ]
    recorder = E12Recorder(profile=listing_profile(), password=PASSWORD, important_files=listed)
    hs = handshake(
        protocol_for(recorder),
        passwords=lambda keys: PASSWORD,
        device=USB["e12"],
        clock=ClockPolicy(station_synchronized=True),
    )
    assert "list_important" in recorder.commands
    assert hs.important == frozenset(listed[:2])
    root = tmp_path / "DSJ0001"
    for seq in (1, 2, 3):
        path = root / "DCIM" / "20261120" / f"DSJ0001_102345_2026112009{30 + seq:02d}00_{seq:04d}.MP4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * seq)
    (root / "DCIM" / "evil.MP4").write_bytes(b"x")
    with UsbRecorderDriver(root, handshake=hs) as d:
        marks = {e.path.rsplit("/", 1)[-1]: e.important for e in d.list_recordings()}
    assert marks == {
        "DSJ0001_102345_20261120093100_0001.MP4": BY_DEVICE_LIST,
        "DSJ0001_102345_20261120093200_0002.MP4": None,
        "DSJ0001_102345_20261120093300_0003.MP4": BY_DEVICE_LIST,
        "evil.MP4": None,
    }


@pytest.mark.parametrize("family", ["dv16", "ambarella", "e12"])
def test_families_without_the_command_list_nothing_and_still_dock(family: str) -> None:
    """No shipped profile has the command (no vendor's is known): the station never sends an unknown one."""
    recorder = make_recorder(family)
    hs = handshake(
        protocol_for(recorder),
        passwords=lambda keys: PASSWORD,
        device=USB[family],
        clock=ClockPolicy(station_synchronized=True),
    )
    assert hs.important is None and recorder.mode == "disk"
    assert "list_important" not in recorder.commands


def test_a_recorder_that_does_not_know_the_command_still_docks() -> None:
    """A bureau's profile names the command but this firmware answers 404: a warning, not a failed dock."""
    station_side = listing_profile()
    device_side = E12Recorder(profile=fast_profile("e12"), password=PASSWORD)  # knows no such code
    hs = handshake(
        open_protocol(station_side, E12Link(device_side)),
        passwords=lambda keys: PASSWORD,
        device=USB["e12"],
        clock=ClockPolicy(station_synchronized=True),
    )
    assert hs.important is None and device_side.mode == "disk"
    assert any("marked important" in w for w in hs.warnings)


def test_a_device_list_is_parsed_safely() -> None:
    assert parse_file_list("a.MP4\r\nDCIM/b.MP4;c.MP4|\x00d.MP4\x00\n\n") == {"a.MP4", "DCIM/b.MP4", "c.MP4", "d.MP4"}
    assert parse_file_list("../x.MP4\nDCIM/./y.MP4\nDCIM//z.MP4\n\u200bq.MP4") == frozenset()
    assert parse_file_list("") == frozenset()


def test_a_text_atom_claiming_more_than_it_holds_does_not_borrow_its_neighbours_bytes() -> None:
    liar = _box(b"\xa9cmt", struct.pack(">HH", 200, 0x55C4) + b"no")
    neighbour = _box(b"\xa9nam", struct.pack(">HH", 3, 0x55C4) + b"IMP")
    tags = tags_of_moov(_box(b"udta", liar + neighbour))
    assert tags == {"comment": "no", "title": "IMP"} and not DEFAULT_MARKS.from_tags(tags)
