"""Media facts from ffprobe (through ffmpeg-python): duration, codec, resolution, frame rate, tags."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
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


def short_of_declared(stream: dict[str, Any]) -> dict[str, Any] | None:
    """A video stream whose packets end before what its container declares (a file cut short while its
    header still gives the full length), from ffprobe ``-count_packets``. Pure."""
    try:
        declared, read = int(stream.get("nb_frames") or 0), int(stream.get("nb_read_packets") or 0)
    except (TypeError, ValueError):
        return None
    if declared and read < declared:
        return {
            "declared_frames": declared,
            "read_packets": read,
            "declared_duration_s": _seconds(stream.get("duration")),
        }
    return None


def decode_check(locator: Any, ffprobe_bin: str) -> dict[str, Any] | None:
    """Read every packet of the first video stream to its end; what is missing, if anything."""
    cmd = [ffprobe_bin, "-v", "error", "-select_streams", "v:0", "-count_packets"]
    cmd += ["-show_entries", "stream=nb_frames,nb_read_packets,duration", "-of", "json", str(locator)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=900, check=False)  # noqa: S603
        streams = json.loads(done.stdout or b"{}").get("streams") or []
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        log.warning("decode check not made: %s", exc)
        return None
    found = short_of_declared(streams[0]) if streams else None
    if found is not None:
        found["ffprobe"] = done.stderr.decode("utf-8", "replace")[-500:]
    return found


def _damaged_at_source(session: Any, rec: Any, found: dict[str, Any]) -> None:
    """The recorder's file was damaged before it reached us: recorded as an incident, for review."""
    from sqlalchemy import select

    from evidence_server.uploads.models import IntegrityIncident

    known = select(IntegrityIncident.id).where(
        IntegrityIncident.recording_id == rec.id, IntegrityIncident.kind == "damaged_at_source"
    )
    if session.scalar(known) is not None:  # probed twice (a retry, a second worker): one incident
        return
    session.add(
        IntegrityIncident(
            kind="damaged_at_source",
            station_id=rec.station_id,
            transfer_id=rec.transfer_id,
            recording_id=rec.id,
            details={"path": rec.original_path, **found},
        )
    )


_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[int, threading.Lock] = {}


def probe_recording(ctx: ServerContext, recording_id: int) -> str:
    """Fill a recording's media facts. Idempotent: a probed recording is left alone, and the callers that
    ask at once (upload, derivation, a rescan) in one process wait for one probe rather than make two."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(recording_id, threading.Lock())
    try:
        with lock:
            return _probe(ctx, recording_id)
    finally:
        with _LOCKS_GUARD:
            if not lock.locked():
                _LOCKS.pop(recording_id, None)


def _probe(ctx: ServerContext, recording_id: int) -> str:
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
        damage = decode_check(ctx.store.locator(rec.storage_key), ctx.settings.ffprobe_bin) if facts["codec"] else None
        if damage is not None:
            rec.probe["damaged_at_source"] = damage
            _damaged_at_source(session, rec, damage)
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
