"""GNSS tracks: Axis JSON location objects, NMEA and GPX sidecars, into one list of points; and a drawing.

A point is ``{"t": ISO time or None, "lat": float, "lon": float, "s": seconds from start or None}``. Pure.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import escape
from typing import Any

import gpxpy
import pynmea2

Point = dict[str, Any]
_WKT = re.compile(r"^\s*POINT\s*\(\s*(-?[0-9.]+)\s+(-?[0-9.]+)\s*\)\s*$", re.IGNORECASE)


class TrackError(ValueError):
    pass


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _checked(lat: float, lon: float) -> tuple[float, float]:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise TrackError(f"position out of range: {lat}, {lon}")
    return lat, lon


def parse_axis(body: bytes) -> list[Point]:
    """``{"CoordinateEntries": [{"LocationWKT": "POINT(lon lat)", "SecondsFromStart", "Timestamp"}]}``."""
    try:
        doc = json.loads(body)
        entries = doc["CoordinateEntries"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TrackError("not an Axis location object") from exc
    points: list[Point] = []
    for e in entries:
        m = _WKT.match(str(e.get("LocationWKT", "")))
        if m is None:
            raise TrackError(f"bad LocationWKT {e.get('LocationWKT')!r}")
        lat, lon = _checked(float(m.group(2)), float(m.group(1)))
        s = e.get("SecondsFromStart")
        points.append({"t": e.get("Timestamp"), "lat": lat, "lon": lon, "s": float(s) if s is not None else None})
    return points


def parse_nmea(text: str) -> list[Point]:
    """RMC sentences (time and date) and GGA sentences (time, dated by the last RMC seen)."""
    points: list[Point] = []
    day = None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("$"):
            continue
        try:
            msg = pynmea2.parse(line)
        except pynmea2.ParseError:
            continue
        if isinstance(msg, pynmea2.types.talker.RMC):
            if msg.status != "A" or msg.datestamp is None:
                continue
            day = msg.datestamp
            t = datetime.combine(day, msg.timestamp).replace(tzinfo=UTC)
        elif isinstance(msg, pynmea2.types.talker.GGA):
            if not msg.gps_qual or day is None:
                continue
            t = datetime.combine(day, msg.timestamp).replace(tzinfo=UTC)
            if points and points[-1]["t"] == _iso(t):
                continue  # the RMC of the same fix
        else:
            continue
        lat, lon = _checked(float(msg.latitude), float(msg.longitude))
        if points and points[-1]["t"] == _iso(t):
            continue
        points.append({"t": _iso(t), "lat": lat, "lon": lon, "s": None})
    return _with_seconds(points)


def parse_gpx(text: str) -> list[Point]:
    try:
        gpx = gpxpy.parse(text)
    except Exception as exc:  # noqa: BLE001  (gpxpy raises several kinds for one bad file)
        raise TrackError("not a GPX file") from exc
    points = [
        {"t": _iso(p.time), "lat": _checked(p.latitude, p.longitude)[0], "lon": p.longitude, "s": None}
        for track in gpx.tracks
        for segment in track.segments
        for p in segment.points
    ]
    return _with_seconds(points)


def _with_seconds(points: list[Point]) -> list[Point]:
    if not points or points[0]["t"] is None:
        return points
    start = datetime.fromisoformat(points[0]["t"].replace("Z", "+00:00"))
    for p in points:
        if p["t"] is not None:
            p["s"] = (datetime.fromisoformat(p["t"].replace("Z", "+00:00")) - start).total_seconds()
    return points


SIDECAR_SUFFIXES = (".nmea", ".gpx")


def is_sidecar(name: str) -> bool:
    """A docked recorder's position file beside its video."""
    return name.lower().endswith(SIDECAR_SUFFIXES)


def parse(name: str, body: bytes) -> tuple[str, list[Point]]:
    """(source, points) for a track object or sidecar, by its name."""
    lower = name.lower()
    if lower.endswith(".json"):
        return "axis-json", parse_axis(body)
    text = body.decode("utf-8", errors="replace")
    if lower.endswith(".gpx"):
        return "gpx", parse_gpx(text)
    if lower.endswith(".nmea"):
        return "nmea", parse_nmea(text)
    raise TrackError(f"not a track file: {name}")


def svg(points: list[Point], width: int = 480, height: int = 320, pad: int = 24) -> str:
    """The track as an inline SVG: a polyline scaled to fit, each point titled with its time and place."""
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    lats = [p["lat"] for p in points]
    lons = [p["lon"] for p in points]
    span = max(max(lats) - min(lats), max(lons) - min(lons), 1e-9)
    scale = min(width - 2 * pad, height - 2 * pad) / span

    def xy(p: Point) -> tuple[float, float]:
        return pad + (p["lon"] - min(lons)) * scale, height - pad - (p["lat"] - min(lats)) * scale

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(xy, points))
    dots = []
    for i, p in enumerate(points):
        x, y = xy(p)
        label = escape(f"{p['t'] or ''} {p['lat']:.6f}, {p['lon']:.6f}")
        dots.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" data-s="{p["s"] if p["s"] is not None else ""}" '
            f'data-i="{i}"><title>{label}</title></circle>'
        )
    first, last = points[0], points[-1]
    caption = escape(f"{first['t'] or ''} → {last['t'] or ''} ({len(points)} points)")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="track" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{caption}">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="2" points="{line}"/>'
        + "".join(dots)
        + f'<text x="{pad}" y="{pad - 8}" font-size="11">{caption}</text></svg>'
    )
