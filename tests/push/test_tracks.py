"""GNSS tracks: the three formats read to the same points, the drawing, and a docked recorder's sidecar."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from evidence_server.push import rules, tracks
from tests.push.conftest import TRACK
from tests.server.test_station_flow import Station
from tests.support.live import LiveServer


def _sentence(body: str) -> str:
    checksum = 0
    for ch in body.encode():
        checksum ^= ch
    return f"${body}*{checksum:02X}"


NMEA = "\n".join(
    _sentence(b)
    for b in (
        "GPRMC,101500.00,A,3954.99162,N,11623.82768,E,0.1,,041226,,,A",
        "GPGGA,101500.00,3954.99162,N,11623.82768,E,1,08,1.0,50.0,M,0.0,M,,",
        "GPRMC,101510.00,A,3955.01400,N,11623.85000,E,0.1,,041226,,,A",
        "GPRMC,101520.00,V,3955.03800,N,11623.88600,E,0.1,,041226,,,A",
    )
)
GPX = """<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
<trk><trkseg>
<trkpt lat="39.916527" lon="116.397128"><time>2026-12-04T10:15:00Z</time></trkpt>
<trkpt lat="39.916900" lon="116.397500"><time>2026-12-04T10:15:10Z</time></trkpt>
</trkseg></trk></gpx>"""


def test_axis_location_object_is_longitude_first() -> None:
    points = tracks.parse_axis(TRACK)
    assert points[0] == {"t": "2026-12-04T10:15:00Z", "lat": 39.916527, "lon": 116.397128, "s": 0.0}
    assert [p["s"] for p in points] == [0.0, 10.0, 20.0]


def test_nmea_keeps_valid_fixes_once_each_with_date_and_time() -> None:
    points = tracks.parse_nmea(NMEA)
    assert [p["t"] for p in points] == ["2026-12-04T10:15:00Z", "2026-12-04T10:15:10Z"]  # the V fix is no fix
    assert points[0]["lat"] == pytest.approx(39.916527, abs=1e-5)
    assert points[0]["lon"] == pytest.approx(116.397128, abs=1e-5)
    assert points[1]["s"] == 10.0


def test_gpx_points_with_times() -> None:
    points = tracks.parse_gpx(GPX)
    assert [(p["t"], p["lat"], p["lon"], p["s"]) for p in points] == [
        ("2026-12-04T10:15:00Z", 39.916527, 116.397128, 0.0),
        ("2026-12-04T10:15:10Z", 39.9169, 116.3975, 10.0),
    ]


@pytest.mark.parametrize("bad", [b"{}", b'{"CoordinateEntries": [{"LocationWKT": "POINT(200 100)"}]}', b"nope"])
def test_a_bad_location_object_is_refused(bad: bytes) -> None:
    with pytest.raises(tracks.TrackError):
        tracks.parse_axis(bad)


def test_drawing_names_every_point_and_escapes() -> None:
    drawing = tracks.svg(tracks.parse_axis(TRACK))
    assert drawing.startswith("<svg") and drawing.count("<circle") == 3
    assert "2026-12-04T10:15:20Z 39.917300, 116.398100" in drawing
    assert "<script" not in tracks.svg([{"t": "<script>", "lat": 1.0, "lon": 1.0, "s": None}])


def test_container_names_and_tokens() -> None:
    name = rules.parse_container_name("6f1c2a9e-3b1d_AXW_0001_20261204_101500")
    assert name is not None and name.user_uuid == "6f1c2a9e-3b1d" and name.device_serial == "AXW_0001"
    assert name.started_at is not None and name.started_at.isoformat() == "2026-12-04T10:15:00+00:00"
    assert rules.parse_container_name("nounderscores") is None
    token = rules.mint_token(b"k" * 32, 7, 2_000_000_000)
    assert rules.token_account(b"k" * 32, token, 1_000_000_000) == 7
    assert rules.token_account(b"k" * 32, token, 2_000_000_001) is None  # expired
    assert rules.token_account(b"x" * 32, token, 1_000_000_000) is None  # another server's
    assert rules.token_account(b"k" * 32, token.replace("_7_", "_8_"), 1_000_000_000) is None


def test_a_docked_recorders_gpx_sidecar_becomes_the_videos_track(live_server: LiveServer) -> None:
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 100
    files = {
        "DCIM/20261204/DSJ0001_102345_20261204101500_0001.MP4": video,
        "DCIM/20261204/DSJ0001_102345_20261204101500_0001.gpx": GPX.encode(),
    }
    station = Station(live_server)
    station.open(files)
    for path, data in files.items():
        assert station.upload(path, data).status_code == 204
    from evidence_server.context import ServerContext
    from evidence_server.push.models import Track
    from evidence_server.recordings.models import Recording

    ctx = ServerContext(live_server.settings())
    deadline = time.monotonic() + 20
    track = None
    while track is None and time.monotonic() < deadline:
        with ctx.sessionmaker() as s:
            track = s.scalar(select(Track))
            video_id = s.scalar(select(Recording.id).where(Recording.original_name.like("%.MP4")))
        time.sleep(0.2)
    ctx.close()
    assert track is not None and track.source == "gpx" and track.recording_id == video_id
    r = httpx.get(f"{live_server.url}/api/v1/recordings/{video_id}/track", headers=live_server.admin_headers)
    assert r.status_code == 200 and len(r.json()["points"]) == 2
