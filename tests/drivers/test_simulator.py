"""The simulated recorder writes what a real one would: real, playable video with the device's tags."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device_drivers import MassStorageDriver
from device_drivers.mp4tags import set_encoder_tag
from device_drivers.simulator import DEVICE_ENCODERS, SimulatedVolume, SimulatorError, main, simulate_device
from tests.drivers.conftest import START, ffprobe

pytestmark = pytest.mark.ffmpeg

MakeVolume = Callable[..., SimulatedVolume]


def creation_time(info: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(info["format"]["tags"]["creation_time"])


@pytest.mark.parametrize(("codec", "codec_name"), [("h264", "h264"), ("h265", "hevc")])
def test_segments_are_real_video_tagged_by_the_device(make_volume: MakeVolume, codec: str, codec_name: str) -> None:
    vol = make_volume(codec=codec, segments=2, segment_seconds=1.5)
    assert vol.root.name == "ZFY_DSJ0001"
    assert [s.path for s in vol.segments] == [
        "DCIM/20261120/DSJ0001_102345_20261120093000_0001.MP4",
        "DCIM/20261120/DSJ0001_102345_20261120093001_0002.MP4",  # 09:30:01.5, named to the second
    ]
    for seg in vol.segments:
        info = ffprobe(vol.file(seg))
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert streams["video"]["codec_name"] == codec_name
        assert (streams["video"]["width"], streams["video"]["height"]) == (160, 120)
        assert streams["audio"]["codec_name"] == "aac"
        assert float(info["format"]["duration"]) == pytest.approx(1.5, abs=0.1)
        assert creation_time(info) == seg.started_at.replace(microsecond=0)  # MP4 keeps whole seconds
        assert info["format"]["tags"]["encoder"] == DEVICE_ENCODERS[codec] == seg.encoder
        assert "102345" in info["format"]["tags"]["comment"]
        assert vol.file(seg).stat().st_mtime == seg.ended_at.timestamp()
    assert vol.segments[1].started_at - vol.segments[0].started_at == timedelta(seconds=1.5)


def test_segments_crossing_midnight_go_to_the_next_day_folder(make_volume: MakeVolume) -> None:
    vol = make_volume(start=datetime(2026, 11, 20, 23, 59, 59), segments=2)  # naive: Beijing time
    assert [s.path for s in vol.segments] == [
        "DCIM/20261120/DSJ0001_102345_20261120235959_0001.MP4",
        "DCIM/20261121/DSJ0001_102345_20261121000000_0002.MP4",
    ]
    assert vol.segments[1].started_at == datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


def test_gap_edit_half_written_and_extra_files(make_volume: MakeVolume) -> None:
    before = time.time()
    vol = make_volume(segments=4, gap_at=2, edited=3, half_written=True, extra_files=True)
    assert [s.seq for s in vol.written] == [1, 3, 4]
    (gap,) = vol.gaps
    assert gap.path is None and gap.started_at == START + timedelta(seconds=1)
    assert vol.segments[2].started_at == START + timedelta(seconds=2)  # the gap's time is missing too

    (edited,) = vol.edited
    info = ffprobe(vol.file(edited))
    assert info["format"]["tags"]["encoder"].startswith("Lavf") and edited.encoder == info["format"]["tags"]["encoder"]
    assert float(info["format"]["duration"]) == pytest.approx(0.5, abs=0.1)  # cut, yet the name is kept
    assert creation_time(info) == edited.started_at

    (half,) = vol.half_written
    assert half.seq == 4 and vol.file(half).stat().st_mtime >= before
    with pytest.raises(subprocess.CalledProcessError):  # no moov yet: unreadable, as while recording
        ffprobe(vol.file(half))

    with MassStorageDriver(vol.root) as d:
        assert [e.path for e in d.list_recordings()] == [s.path for s in vol.written]
        assert {r.path for r in d.rejected} == set(vol.extra_files) == {"LOG/DEVICE.LOG", "DCIM/20261120/INDEX.DAT"}
        assert d.identify().serial == "DSJ0001"
    assert [p.name for p in vol.root.parent.iterdir()] == ["ZFY_DSJ0001"]  # no work files left behind


def test_edited_encoder_can_name_another_tool(make_volume: MakeVolume) -> None:
    vol = make_volume(segments=1, edited=1, edited_encoder="HandBrake 1.6.1 2023012300")
    assert ffprobe(vol.file(vol.segments[0]))["format"]["tags"]["encoder"] == "HandBrake 1.6.1 2023012300"


def test_big_bytes_makes_large_playable_files_quickly(make_volume: MakeVolume) -> None:
    started = time.monotonic()
    vol = make_volume(segments=2, big_bytes=3_000_000, label="ZFY_BENCH01")
    assert time.monotonic() - started < 10
    for seg in vol.segments:
        path = vol.file(seg)
        assert path.stat().st_size >= 3_000_000
        info = ffprobe(path)
        assert info["format"]["tags"]["encoder"] == DEVICE_ENCODERS["h264"]
        duration = (seg.ended_at - seg.started_at).total_seconds()
        assert float(info["format"]["duration"]) == pytest.approx(duration, rel=0.1)
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], check=False)
        assert decoded.returncode == 0


def test_encoder_tag_can_be_replaced(volume: SimulatedVolume, tmp_path: Path) -> None:
    copy = tmp_path / "copy.MP4"
    shutil.copy(volume.file(volume.segments[0]), copy)
    set_encoder_tag(copy, "FW 2.0")
    set_encoder_tag(copy, "FW 2.1")
    assert ffprobe(copy)["format"]["tags"]["encoder"] == "FW 2.1"


@pytest.mark.parametrize(
    "options",
    [{"codec": "vp9"}, {"resolution": "big"}, {"gap_at": 9}, {"gap_at": 2, "edited": 2}, {"segments": 0}],
)
def test_nonsense_options_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(SimulatorError):
        simulate_device(tmp_path, **options)


def test_cli(ffmpeg: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        str(tmp_path),
        "--serial",
        "DSJ0042",
        "--segments",
        "2",
        "--segment-seconds",
        "1",
        "--gap-at",
        "2",
    ]
    argv += ["--resolution", "160x120", "--start", "2026-11-20T09:30:00+08:00"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "DCIM/20261120/DSJ0042_102345_20261120093000_0001.MP4" in out
    assert "GAP" in out
    assert (tmp_path / "ZFY_DSJ0042" / "DCIM" / "20261120" / "DSJ0042_102345_20261120093000_0001.MP4").is_file()
    assert main([str(tmp_path), "--codec", "h265", "--resolution", "huge"]) == 2
