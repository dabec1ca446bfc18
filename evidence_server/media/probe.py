"""Media facts from ffprobe (through ffmpeg-python): duration, codec, resolution, frame rate, tags."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import ffmpeg

from evidence_server.context import ServerContext

log = logging.getLogger(__name__)


def _rate(text: str | None) -> float | None:
    try:
        value = float(Fraction(text)) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return round(value, 3) if value else None


def _seconds(text: str | None) -> float | None:
    try:
        return round(float(text), 3) if text else None
    except ValueError:  # ffprobe says "N/A" for streams without a duration
        return None


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def media_facts(probe: dict[str, Any]) -> dict[str, Any]:
    """The facts Custodia keeps, from ffprobe's ``-show_format -show_streams`` JSON. Pure."""
    fmt = probe.get("format") or {}
    tags = {k.lower(): v for k, v in (fmt.get("tags") or {}).items()}
    video = next((s for s in probe.get("streams", []) if s.get("codec_type") == "video"), None)
    duration = _seconds(fmt.get("duration")) or _seconds((video or {}).get("duration"))
    facts: dict[str, Any] = {
        "duration_s": duration,
        "container_format": fmt.get("format_name"),
        "container_created_at": _when(tags.get("creation_time")),
        "encoder": tags.get("encoder") or ((video or {}).get("tags") or {}).get("encoder"),
        "codec": None,
        "width": None,
        "height": None,
        "frame_rate": None,
    }
    if video:
        facts.update(
            codec=video.get("codec_name"),
            width=video.get("width"),
            height=video.get("height"),
            frame_rate=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
        )
    return facts


def probe_recording(ctx: ServerContext, recording_id: int) -> str:
    """Fill a recording's media facts. Idempotent: a probed recording is left alone."""
    from evidence_server.recordings.models import Recording

    with ctx.sessionmaker() as session:
        rec = session.get(Recording, recording_id)
        if rec is None or rec.probe_state == "done":
            return "skipped"
        try:
            probe = ffmpeg.probe(ctx.store.locator(rec.storage_key), cmd=ctx.settings.ffprobe_bin)
        except ffmpeg.Error as exc:
            rec.probe_state = "not_media"
            rec.probe = {"error": (exc.stderr or b"").decode("utf-8", "replace")[-2000:]}
            session.commit()
            return rec.probe_state
        facts = media_facts(probe)
        for field, value in facts.items():
            setattr(rec, field, value)
        rec.probe = {"format": probe.get("format"), "streams": probe.get("streams")}
        rec.probe_state = "done" if facts["codec"] else "not_media"
        if facts["duration_s"]:
            span = timedelta(seconds=facts["duration_s"])
            if rec.name_started_at:
                rec.name_ended_at = rec.name_started_at + span
            if facts["container_created_at"]:
                rec.container_started_at = facts["container_created_at"]
                rec.container_ended_at = facts["container_created_at"] + span
        session.commit()
        return rec.probe_state
