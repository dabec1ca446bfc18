"""Background task of uploads: void abandoned uploads and free their staging space (scheduled)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.uploads.expiry import expire_uploads


def _every(settings: Any) -> float:
    return settings.upload_sweep_interval_s if settings.upload_expiry_hours > 0 else 0


@task("uploads.expire", every=_every)
def uploads_expire(ctx: ServerContext) -> dict[str, Any]:
    return asdict(expire_uploads(ctx))
