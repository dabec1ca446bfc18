"""Route helpers for recordings: a recording the caller may see, or 404 (routers' layer, not a service)."""

from __future__ import annotations

from fastapi import HTTPException

from evidence_server.accounts.models import User
from evidence_server.cases.access import recordings_visible
from evidence_server.db import SessionDep
from evidence_server.recordings.models import Recording


def get_visible(session: SessionDep, user: User, recording_id: int) -> Recording:
    """The recording, if ``user`` may see it; the same 404 whether it does not exist or is not theirs."""
    rec = session.scalar(recordings_visible(user).where(Recording.id == recording_id))
    if rec is None:
        raise HTTPException(404, "no such recording, or not yours to see")
    return rec
