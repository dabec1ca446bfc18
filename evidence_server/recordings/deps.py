"""Route helpers for recordings: a recording the caller may see, or 404 (routers' layer, not a service)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from sqlalchemy import Row

from evidence_server.accounts.models import User
from evidence_server.cases.access import recordings_visible
from evidence_server.db import SessionDep
from evidence_server.recordings.models import Recording


def _not_yours() -> HTTPException:
    return HTTPException(404, "no such recording, or not yours to see")


def get_visible(session: SessionDep, user: User, recording_id: int) -> Recording:
    """The recording, if ``user`` may see it; the same 404 whether it does not exist or is not theirs."""
    rec = session.scalar(recordings_visible(user).where(Recording.id == recording_id))
    if rec is None:
        raise _not_yours()
    return rec


def get_visible_row(session: SessionDep, user: User, recording_id: int, columns: Sequence[Any]) -> Row[Any]:
    """The same decision, reading only ``columns`` (of recordings) as a plain row: no ORM object, none of the
    columns a view does not show (the ffprobe JSON is kilobytes)."""
    row = session.execute(
        recordings_visible(user).where(Recording.id == recording_id).with_only_columns(*columns)
    ).first()
    if row is None:
        raise _not_yours()
    return row
