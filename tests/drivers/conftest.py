"""Simulated recorder volumes (real ffmpeg video) and an ffprobe reader for the driver tests."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from device_drivers.simulator import SimulatedVolume, simulate_device

#: 2026-11-20 09:30:00 in Beijing.
START = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON for format and streams; raises CalledProcessError if ffprobe cannot read it."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    info: dict[str, Any] = json.loads(out.stdout)
    return info


@pytest.fixture(scope="session")
def pristine_volume(ffmpeg: None, tmp_path_factory: pytest.TempPathFactory) -> SimulatedVolume:
    """Three 1 s H.264 segments from DSJ0001 / officer 102345, made once per session; do not modify."""
    return simulate_device(
        tmp_path_factory.mktemp("pristine"),
        start=START,
        segments=3,
        segment_seconds=1.0,
        resolution="160x120",
    )


@pytest.fixture
def volume(pristine_volume: SimulatedVolume, tmp_path: Path) -> SimulatedVolume:
    """A private copy (mtimes kept) of the pristine volume under ``tmp_path/media/ZFY_DSJ0001``."""
    root = tmp_path / "media" / pristine_volume.label
    shutil.copytree(pristine_volume.root, root, copy_function=shutil.copy2)
    return dataclasses.replace(pristine_volume, root=root, segments=list(pristine_volume.segments))


@pytest.fixture
def make_volume(ffmpeg: None, tmp_path: Path) -> Callable[..., SimulatedVolume]:
    """``make_volume(**simulate_device options)``: a fresh tiny volume under ``tmp_path/media``."""

    def make(**options: Any) -> SimulatedVolume:
        defaults: dict[str, Any] = {"start": START, "segment_seconds": 1.0, "resolution": "160x120"}
        return simulate_device(tmp_path / "media", **{**defaults, **options})

    return make
