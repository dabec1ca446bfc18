"""Officers by number: the name to show beside an officer number wherever one appears."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User


def officer_names(session: Session) -> dict[str, str]:
    """``{officer number: display name}`` of every user who has a number (a few hundred rows at most)."""
    rows = session.execute(select(User.officer_no, User.display_name).where(User.officer_no.is_not(None))).all()
    return {str(no): name for no, name in rows}
