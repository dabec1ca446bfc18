"""Background tasks of media: probe a recording's facts, make its thumbnail and proxy."""

from __future__ import annotations

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.media.derive import derive_recording
from evidence_server.media.probe import probe_recording


@task("media.probe_recording")
def probe(ctx: ServerContext, recording_id: int) -> str:
    return probe_recording(ctx, recording_id)


@task("media.derive_recording")
def derive(ctx: ServerContext, recording_id: int) -> dict[str, str]:
    return derive_recording(ctx, recording_id)
