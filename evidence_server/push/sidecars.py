"""GNSS tracks a docked recorder writes beside its video (NMEA or GPX sidecar files), kept as tracks."""

from __future__ import annotations

from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.push import tracks
from evidence_server.push.models import Track
from evidence_server.recordings.models import Recording

MAX_SIDECAR_BYTES = 16 * 1024**2


def store_sidecar_track(ctx: ServerContext, session: Session, recording_id: int) -> int | None:
    """Parse a sidecar recording's positions and attach them to the video of the same name and transfer.

    Idempotent: a sidecar already read gives its track again. Returns the track id, or None (no sidecar,
    unreadable, too large)."""
    rec = session.get(Recording, recording_id)
    if rec is None or not tracks.is_sidecar(rec.original_name) or rec.size > MAX_SIDECAR_BYTES:
        return None
    sha = rec.sha256.removeprefix("sha256:")
    done = session.scalar(select(Track.id).where(Track.sha256 == sha, Track.unit_id == rec.unit_id))
    if done is not None:
        return done
    body = b"".join(ctx.store.iter_range(rec.storage_key))
    try:
        source, points = tracks.parse(rec.original_name, body)
    except tracks.TrackError:
        return None
    stem = str(PurePosixPath(rec.original_path).with_suffix(""))
    siblings = session.scalars(
        select(Recording).where(Recording.transfer_id == rec.transfer_id, Recording.id != rec.id)
    ).all()
    video = next(
        (
            r
            for r in siblings
            if str(PurePosixPath(r.original_path).with_suffix("")) == stem and not tracks.is_sidecar(r.original_name)
        ),
        None,
    )
    track = Track(
        unit_id=rec.unit_id,
        recording_id=video.id if video is not None else rec.id,
        source=source,
        name=rec.original_name,
        sha256=sha,
        points=points,
    )
    session.add(track)
    session.flush()
    audit(
        session,
        "track.stored",
        object_type="recording",
        object_id=track.recording_id,
        details={"sidecar_recording_id": rec.id, "source": source, "points": len(points), "sha256": sha},
    )
    session.commit()
    return track.id
