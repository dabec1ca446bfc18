"""Background tasks of the audit log: sign a checkpoint; sequence pending entries (scheduled, idempotent)."""

from __future__ import annotations

from typing import Any

from evidence_server.audit.log import issue_checkpoint
from evidence_server.audit.sequencer import sequence
from evidence_server.audit.tally import close_windows
from evidence_server.background.registry import task
from evidence_server.config import Settings
from evidence_server.context import ServerContext


def _sequence_every(settings: Settings) -> float:
    """Only PostgreSQL commits entries pending (SQLite places them as it commits)."""
    return settings.audit_sequence_interval_s if settings.database_url.startswith("postgresql") else 0


@task("audit.sequence", every=_sequence_every)
def audit_sequence(ctx: ServerContext) -> int:
    """Place entries whose request died between its commit and their sequencing (group commit)."""
    return sequence(ctx.engine)


@task("audit.checkpoint", every=lambda s: s.audit_checkpoint_interval_s)
def audit_checkpoint(ctx: ServerContext) -> dict[str, Any]:
    with ctx.sessionmaker() as session:
        cp, created = issue_checkpoint(ctx, session)
        return {"tree_size": cp.tree_size, "root_hash": cp.root_hash, "created": created}


@task("audit.close_tallies", every=lambda s: s.audit_tally_window_s)
def audit_close_tallies(ctx: ServerContext) -> dict[str, Any]:
    """Write the counts of repeated anonymous failures whose window has closed (idempotent)."""
    with ctx.sessionmaker() as session:
        written = close_windows(session, ctx.settings.audit_tally_window_s)
        session.commit()
        return {"entries": written}
