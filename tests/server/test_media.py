"""Media facts from ffprobe: pure extraction, and the real probe task on a real file."""

from __future__ import annotations

import time

import pytest

from evidence_server.media.probe import media_facts
from tests.server.test_station_flow import Station
from tests.support.live import LiveServer

PROBE = {
    "format": {
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration": "60.040000",
        "tags": {"creation_time": "2026-11-21T01:00:00.000000Z", "encoder": "Lavf58.76.100"},
    },
    "streams": [
        {"codec_type": "audio", "codec_name": "aac"},
        {
            "codec_type": "video",
            "codec_name": "hevc",
            "width": 1920,
            "height": 1080,
            "avg_frame_rate": "30000/1001",
            "r_frame_rate": "30/1",
        },
    ],
}


def test_media_facts_from_probe_json() -> None:
    facts = media_facts(PROBE)
    assert facts["codec"] == "hevc" and (facts["width"], facts["height"]) == (1920, 1080)
    assert facts["frame_rate"] == pytest.approx(29.97, abs=0.01)
    assert facts["duration_s"] == 60.04
    assert facts["encoder"] == "Lavf58.76.100"
    assert facts["container_created_at"].isoformat() == "2026-11-21T01:00:00+00:00"


@pytest.mark.parametrize(
    "probe", [{}, {"format": {}, "streams": []}, {"format": {"duration": "N/A"}, "streams": [{"codec_type": "audio"}]}]
)
def test_media_facts_of_non_video(probe: dict) -> None:
    facts = media_facts(probe)
    assert facts["codec"] is None and facts["width"] is None


def wait_probed(server: LiveServer, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = server.get("/api/v1/recordings").json()["items"]
        if items and all(i["probe_state"] != "pending" for i in items):
            return {i["original_name"]: i for i in items}
        time.sleep(0.2)
    raise TimeoutError("recordings were not probed")


@pytest.mark.ffmpeg
def test_uploaded_video_gets_media_facts(live_server: LiveServer, tiny_video) -> None:
    st = Station(live_server)
    data = tiny_video.read_bytes()
    files = {f"DCIM/20261121/{tiny_video.name}": data, "DCIM/20261121/notes.MP4": b"not a video at all"}
    st.open(files)
    for path, body in files.items():
        st.upload(path, body)
    recs = wait_probed(live_server)
    video = recs[tiny_video.name]
    assert video["probe_state"] == "done" and video["codec"] == "h264"
    assert (video["width"], video["height"]) == (160, 120) and video["frame_rate"] == 15
    assert video["duration_s"] == pytest.approx(1.0, abs=0.2)
    assert video["encoder"] == "DV16 Recorder"
    assert video["container_started_at"].startswith("2026-11-21T01:00:00")
    assert video["name_started_at"].startswith("2026-11-21T01:00:00") and video["name_ended_at"]
    assert recs["notes.MP4"]["probe_state"] == "not_media"
