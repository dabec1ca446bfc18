"""Background task of push ingest and tracks: read a docked recorder's NMEA/GPX sidecar into a track."""

from __future__ import annotations

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.push.sidecars import store_sidecar_track


@task("push.track_from_sidecar")
def track_from_sidecar(ctx: ServerContext, recording_id: int) -> int | None:
    with ctx.sessionmaker() as session:
        return store_sidecar_track(ctx, session, recording_id)
