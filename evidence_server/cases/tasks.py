"""Background task of cases: link a new recording to the case of its checkout."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from evidence_server.background.registry import task
from evidence_server.cases.linking import auto_link
from evidence_server.context import ServerContext
from evidence_server.media.probe import probe_recording


@task("cases.auto_link_recording")
def auto_link_recording(ctx: ServerContext, recording_id: int) -> int:
    """Background form of ``auto_link`` for one new recording (probed first, for its end time)."""
    probe_recording(ctx, recording_id)
    for attempt in (1, 2):  # a concurrent task may open the same case or link the same recording
        with ctx.sessionmaker() as session:
            try:
                made = auto_link(session, ctx.settings, [recording_id])
                session.commit()
                return len(made)
            except IntegrityError:
                session.rollback()
                if attempt == 2:
                    raise
    return 0
