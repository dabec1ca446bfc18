"""Reading what push ingest stored: the GNSS track of a recording."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from custodia_wire import documents
from evidence_server.push.models import PushObject, Track


def track_of(session: Session, recording_id: int) -> dict[str, Any] | None:
    """The track of a recording: its own (a docked sidecar), else its push container's."""
    track = session.scalar(select(Track).where(Track.recording_id == recording_id).limit(1))
    if track is None:
        container_id = session.scalar(
            select(PushObject.container_id).where(PushObject.recording_id == recording_id).limit(1)
        )
        if container_id is not None:
            track = session.scalar(select(Track).where(Track.container_id == container_id).limit(1))
    if track is None:
        return None
    return {
        "id": track.id,
        "source": track.source,
        "name": track.name,
        "sha256": track.sha256,
        "received_at": documents.utc_iso(track.received_at),
        "points": track.points,
    }


def pushed_clip(session: Session, recording_id: int) -> dict[str, Any] | None:
    """Where the chain of custody of a pushed clip starts: the server's receipt, with the sender's MD5."""
    obj = session.scalar(select(PushObject).where(PushObject.recording_id == recording_id).limit(1))
    if obj is None:
        return None
    return {"name": obj.name, "sender_md5": obj.md5, "received_at": obj.received_at}
