"""Background task of cases: link a new recording to the case of its checkout."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from evidence_server.background.registry import task
from evidence_server.cases.linking import auto_link
from evidence_server.context import ServerContext
from evidence_server.media.probe import probe_recording
from evidence_server.recordings.models import Recording


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


@task("cases.auto_link_device")
def auto_link_device(ctx: ServerContext, serial: str) -> int:
    """Link the recordings of a device just confirmed by a device administrator to their cases."""
    with ctx.sessionmaker() as session:
        ids = list(session.scalars(select(Recording.id).where(Recording.device_serial == serial)))
    made = 0
    for i in range(0, len(ids), 200):
        with ctx.sessionmaker() as session:
            made += len(auto_link(session, ctx.settings, ids[i : i + 200]))
            session.commit()
    return made
