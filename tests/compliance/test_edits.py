"""Edits judged against each device's own profile, on real files made by ffmpeg.

Two recorder families: ``HX`` writes H.265 with its own firmware tags (no libavformat encoder tag, a
90 kHz video time base, 16 kHz mono audio); ``LV``'s firmware muxes with libavformat, so every honest
segment carries ``Lavf``/``Lavc`` tags. Desktop edits: trim, re-encode to another codec, remux to
QuickTime, metadata rewrite. Each edit is found with the properties that differ; no honest segment of
either family is flagged."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python
import pytest

from evidence_server.compliance import rules
from evidence_server.compliance.facts import DeviceFacts, Kind, Segment, Thresholds
from evidence_server.media.profile import profile_of

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
LENGTH = 2  # seconds per segment (the recorders' 5-15 minutes, scaled down)
HONEST = 6

FAMILIES: dict[str, list[str]] = {
    "HX": [
        "-c:v", "libx265", "-x265-params", "log-level=error", "-c:a", "aac", "-ac", "1", "-ar", "16000",
        "-fflags", "+bitexact", "-metadata", "comment=HXFW 2.1.4", "-metadata:s:v", "encoder=HX HEVC",
        "-metadata:s:v", "handler_name=HX Video", "-video_track_timescale", "90000",
    ],
    "LV": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2", "-ar", "48000"],
}  # fmt: skip

EDITS: dict[str, list[str]] = {
    "trim": ["-t", "1", "-c", "copy"],
    "reencode": ["-c:v", "mpeg4", "-c:a", "copy"],
    "remux": ["-c", "copy", "-f", "mov"],
    "metadata": ["-c", "copy", "-map_metadata", "-1"],
}


def run(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True)


def name(family: str, n: int) -> str:
    at = START + timedelta(seconds=LENGTH * (n - 1))
    return f"DCIM/{family}1_102345_{at:%Y%m%d%H%M%S}_{n:04d}.MP4"


def make(directory: Path, family: str, n: int) -> Path:
    out = directory / f"{family}_{n}.mp4"
    at = START + timedelta(seconds=LENGTH * (n - 1))
    run(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=10:duration={LENGTH}",
        "-f", "lavfi", "-i", f"sine=frequency={300 + 20 * n}:duration={LENGTH}",
        *FAMILIES[family], "-metadata", f"creation_time={at:%Y-%m-%dT%H:%M:%SZ}", str(out),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ffmpeg: None) -> dict[tuple[str, str | int], Path]:
    d = tmp_path_factory.mktemp("edits")
    out: dict[tuple[str, str | int], Path] = {}
    for family in FAMILIES:
        for n in range(1, HONEST + 1):
            out[(family, n)] = make(d, family, n)
        for edit, args in EDITS.items():
            edited = d / f"{family}_{edit}.mp4"
            run("-i", str(out[(family, 3)]), *args, str(edited))
            out[(family, edit)] = edited
    return out


def segment(family: str, n: int, path: Path) -> Segment:
    probe: dict[str, Any] = ffmpeg_python.probe(str(path))
    tags = {k.lower(): v for k, v in (probe["format"].get("tags") or {}).items()}
    created = tags.get("creation_time")
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    start = START + timedelta(seconds=LENGTH * (n - 1))
    return Segment(
        device_serial=f"{family}1",
        path=name(family, n),
        size=path.stat().st_size,
        start=start,
        end=start + timedelta(seconds=float(probe["format"]["duration"])),
        recording_id=n,
        unit_id=1,
        duration_s=float(probe["format"]["duration"]),
        codec=video["codec_name"],
        width=video["width"],
        height=video["height"],
        encoder=tags.get("encoder"),
        container_created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
        transferred_at=START + timedelta(hours=1),
        family=family,
        profile=profile_of(probe, name(family, n)),
    )


def device(family: str, files: dict[tuple[str, str | int], Path], edit: str | None = None) -> DeviceFacts:
    segs = [segment(family, n, files[(family, edit if (n == 3 and edit) else n)]) for n in range(1, HONEST + 1)]
    return DeviceFacts(serial=f"{family}1", unit_id=1, family=family, segments=segs)


def edits(facts: DeviceFacts) -> list[Any]:
    th = Thresholds(edit_time_tolerance_s=10.0)
    return [f for f in rules.device_findings(facts, th, START + timedelta(days=30)) if f.kind == Kind.suspected_edit]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_honest_segments_of_either_family_are_never_flagged(family: str, files: dict[Any, Path]) -> None:
    facts = device(family, files)
    if family == "LV":
        assert all((s.encoder or "").startswith("Lavf") for s in facts.segments)  # the editor pattern matches
    assert edits(facts) == []


def test_a_young_device_whose_every_segment_carries_libavformat_tags_is_not_flagged(files: dict[Any, Path]) -> None:
    facts = device("LV", files)
    young = DeviceFacts(serial="LV1", unit_id=1, family="LV", segments=facts.segments[:2])  # too few to learn from
    assert edits(young) == []


EXPECTED = {  # (family, edit) → properties that must be among those listed as differing
    ("HX", "trim"): {"encoder", "metadata_keys"},
    ("HX", "reencode"): {"video_codec", "video_encoder"},
    ("HX", "remux"): {"brand"},
    ("HX", "metadata"): {"metadata_keys"},
    ("LV", "reencode"): {"video_codec", "video_encoder"},
    ("LV", "remux"): {"brand"},
    ("LV", "metadata"): {"metadata_keys"},
}


@pytest.mark.parametrize("family, edit", [(f, e) for f in FAMILIES for e in EDITS])
def test_each_desktop_edit_is_flagged_with_what_differs(family: str, edit: str, files: dict[Any, Path]) -> None:
    (flag,) = edits(device(family, files, edit))
    assert flag.evidence["recording"]["recording_id"] == 3 and flag.device_serial == f"{family}1"
    signs = {s["sign"] for s in flag.evidence["signs"]}
    differing = {d["property"] for d in flag.evidence["differences"]}
    assert differing >= EXPECTED.get((family, edit), set())
    for d in flag.evidence["differences"]:
        assert d["expected"] != d["found"]
    if edit == "trim":
        assert "length" in signs  # 1 s less than its siblings, although the next segment followed at once
    if (family, edit) == ("HX", "reencode"):
        (codec,) = [d for d in flag.evidence["differences"] if d["property"] == "video_codec"]
        assert (codec["expected"], codec["found"]) == ("hevc", "mpeg4")


def test_a_new_device_falls_back_to_its_family_profile(files: dict[Any, Path]) -> None:
    family = device("HX", files)
    from evidence_server.compliance.profile import learn

    profile = learn(s.profile for s in family.segments if s.profile)
    edited = segment("HX", 1, files[("HX", "reencode")])
    new = DeviceFacts(serial="HX2", unit_id=1, family="HX", segments=[edited], family_profile=profile)
    (flag,) = edits(new)
    assert flag.evidence["signs"][0]["profile_from"] == "family"
    assert "video_codec" in {d["property"] for d in flag.evidence["differences"]}
