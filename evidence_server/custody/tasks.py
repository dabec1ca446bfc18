"""Background task of custody: block maps for recordings stored before there were maps (scheduled)."""

from __future__ import annotations

from dataclasses import asdict

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.custody.blockmaps import backfill


@task("custody.backfill_block_maps", every=lambda s: s.block_map_backfill_interval_s)
def backfill_block_maps(ctx: ServerContext, files: int | None = None) -> dict[str, list[int]]:
    return asdict(backfill(ctx, files))
