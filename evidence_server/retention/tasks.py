"""The scheduled retention job: ``retention.apply`` walks every recording within a time budget."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from evidence_server.background.registry import task
from evidence_server.context import ServerContext
from evidence_server.retention.apply import apply_retention
from evidence_server.retention.service import current_policy


@task("retention.apply", every=lambda s: s.retention_interval_s)
def retention_apply(ctx: ServerContext, max_seconds: float | None = None) -> dict[str, Any]:
    """Idempotent; stops cleanly between batches once ``max_seconds`` (default: the setting) have passed."""
    budget = ctx.settings.retention_run_seconds if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget
    with ctx.sessionmaker() as session:
        policy, _ = current_policy(session, ctx)
        report = apply_retention(
            session,
            ctx.store,
            policy,
            tz=ctx.settings.default_timezone,
            should_stop=lambda: time.monotonic() > deadline,
        )
    return asdict(report)
