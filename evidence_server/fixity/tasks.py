"""Background tasks of fixity: the paced sweep over stored recordings, the SM3 of older ones (scheduled)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.fixity.service import backfill_sm3, sweep


@task("fixity.sweep", every=lambda s: s.fixity_interval_s)
def fixity_sweep(ctx: ServerContext, files: int | None = None) -> dict[str, Any]:
    return asdict(sweep(ctx, files=files))


@task("fixity.backfill_sm3", every=lambda s: s.sm3_backfill_interval_s)
def fixity_backfill_sm3(ctx: ServerContext, files: int | None = None) -> dict[str, Any]:
    """SM3 for recordings stored before the server computed it on receipt."""
    return asdict(backfill_sm3(ctx, files=files))
