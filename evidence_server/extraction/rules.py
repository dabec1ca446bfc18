"""When a package link may be made and used. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

#: the longest a package link may live
MAX_LINK_DAYS = 30


def link_expiry_problem(expires_at: datetime, now: datetime, max_days: int = MAX_LINK_DAYS) -> str | None:
    """Why ``expires_at`` is no expiry for a new link (None: it is one): zoned, in the future, within the bound."""
    if expires_at.tzinfo is None:
        return "the expiry needs a time zone"
    if expires_at <= now:
        return "the expiry is in the past"
    if expires_at - now > timedelta(days=max_days):
        return f"a link lives at most {max_days} days"
    return None


def link_usable(expires_at: datetime, revoked_at: datetime | None, now: datetime) -> bool:
    return revoked_at is None and now < expires_at
