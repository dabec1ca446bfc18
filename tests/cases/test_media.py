"""Derived media made by real ffmpeg from real files: thumbnails for all, an H.264 proxy for H.265;
originals untouched; proxies served with HTTP Range and always marked as derived."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from custodia_wire import fingerprint
from evidence_server.media.derive import derive_recording
from tests.cases.conftest import World
from tests.conftest import make_video

pytestmark = pytest.mark.ffmpeg


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: None) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "h265": make_video(folder / "DSJ-A001_20261120_093000_HEVC.MP4", codec="libx265", seconds=1.0),
        "h264": make_video(folder / "DSJ-A001_20261120_094500.MP4", seconds=1.0),
    }


RANGES = [  # (Range header, status, length, Content-Range) with {size}, {first}, {last} of the proxy
    ("bytes=0-99", 206, 100, "bytes 0-99/{size}"),
    ("bytes=-10", 206, 10, "bytes {first}-{last}/{size}"),
    ("bytes=100-", 206, None, "bytes 100-{last}/{size}"),
    ("bytes=abc", 416, None, "bytes */{size}"),
    ("bytes=0-1,5-6", 416, None, "bytes */{size}"),
    ("bytes={size}-", 416, None, "bytes */{size}"),
]


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def test_h265_gets_an_h264_proxy_served_with_range_and_a_thumbnail_and_the_original_is_untouched(
    world: World, clips: dict[str, Path], tmp_path: Path
) -> None:
    original = clips["h265"].read_bytes()
    rec = world.recording(clips["h265"])
    assert derive_recording(world.ctx, rec) == {"thumbnail": "done", "proxy": "done"}
    assert derive_recording(world.ctx, rec) == {"thumbnail": "done", "proxy": "done"}  # idempotent

    derived = {d["kind"]: d for d in world.get("handler", f"/api/v1/recordings/{rec}/derivatives").json()}
    source = fingerprint.of_bytes(original).blake3
    assert {d["source_blake3"] for d in derived.values()} == {source}
    assert source not in {d["blake3"] for d in derived.values()}

    r = world.get("officer1", f"/api/v1/recordings/{rec}/proxy")
    assert r.status_code == 200 and r.headers["custodia-derived"] == "proxy"
    assert r.headers["custodia-derived-from"] == source
    assert fingerprint.of_bytes(r.content).blake3 == derived["proxy"]["blake3"]
    proxy = tmp_path / "proxy.mp4"
    proxy.write_bytes(r.content)
    facts = ffprobe(proxy)
    video = next(s for s in facts["streams"] if s["codec_type"] == "video")
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert float(facts["format"]["duration"]) == pytest.approx(1.0, abs=0.2)

    thumb = world.get("officer1", f"/api/v1/recordings/{rec}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:3] == b"\xff\xd8\xff"
    (tmp_path / "thumb.jpg").write_bytes(thumb.content)
    assert ffprobe(tmp_path / "thumb.jpg")["streams"][0]["width"] == 320

    # the evidence is exactly what it was, and the derived files live elsewhere
    with world.session() as s:
        from evidence_server.media.models import DerivedMedia
        from evidence_server.recordings.models import Recording

        row = s.get(Recording, rec)
        keys = [d.storage_key for d in s.query(DerivedMedia).filter_by(recording_id=rec)]
    assert b"".join(world.ctx.store.iter_range(row.storage_key)) == original
    assert fingerprint.of_bytes(original).sha256 == row.sha256
    assert all(k.startswith("derived/") for k in keys) and row.storage_key.startswith("blake3/")
    assert world.get("officer1", f"/api/v1/recordings/{rec}/content").content == original

    # the proxy is served with HTTP Range, like the original
    size = len(r.content)
    for header, status, length, content_range in RANGES:
        part = world.get("handler", f"/api/v1/recordings/{rec}/proxy", headers={"Range": header.format(size=size)})
        assert part.status_code == status, header
        assert part.headers["content-range"] == content_range.format(size=size, first=size - 10, last=size - 1)
        if status == 206:
            start = int(part.headers["content-range"].split()[1].split("-")[0])
            assert part.content == r.content[start : start + len(part.content)]
            assert length is None or len(part.content) == length


def test_h264_needs_no_proxy(world: World, clips: dict[str, Path]) -> None:
    rec = world.recording(clips["h264"])
    assert derive_recording(world.ctx, rec) == {"thumbnail": "done", "proxy": "not_needed"}
    r = world.get("officer1", f"/api/v1/recordings/{rec}/proxy")
    assert (r.status_code, r.json()["detail"]["code"]) == (404, "not_needed")


def test_a_file_ffmpeg_cannot_read_gets_no_derived_files(world: World, ffmpeg: None) -> None:
    rec = world.recording(b"not a video at all", name="BROKEN.MP4")
    assert derive_recording(world.ctx, rec) == {"thumbnail": "not_needed", "proxy": "not_needed"}
    assert world.get("officer1", f"/api/v1/recordings/{rec}/thumbnail").status_code == 404
