"""Background tasks of media: probe a recording's facts, make its thumbnail and proxy."""

from __future__ import annotations

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.media.derive import derive_recording
from evidence_server.media.probe import backfill_profiles, probe_recording


@task("media.probe_recording")
def probe(ctx: ServerContext, recording_id: int) -> str:
    return probe_recording(ctx, recording_id)


@task("media.derive_recording")
def derive(ctx: ServerContext, recording_id: int) -> dict[str, str]:
    return derive_recording(ctx, recording_id)


@task("media.backfill_profiles", every=lambda s: s.media_profile_backfill_interval_s)
def profiles(ctx: ServerContext) -> int:
    return backfill_profiles(ctx)
