"""Background task of fixity: the paced sweep over stored recordings (scheduled)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.fixity.service import sweep


@task("fixity.sweep", every=lambda s: s.fixity_interval_s)
def fixity_sweep(ctx: ServerContext, files: int | None = None) -> dict[str, Any]:
    return asdict(sweep(ctx, files=files))
