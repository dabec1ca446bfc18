"""Logging in, for the API and the login page alike: the abuse limits, the audit, the session cookie."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, Response
from sqlalchemy.orm import Session

from evidence_server.accounts import service
from evidence_server.accounts.models import User
from evidence_server.audit import tally
from evidence_server.audit.service import record as audit
from evidence_server.context import context_of
from evidence_server.security import SESSION_COOKIE, client_addr


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    ctx = context_of(request)
    settings = ctx.settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        path="/",
    )


class LoginRefused(Exception):
    """A login refused: wrong credentials (401), a locked account (423) or a throttled address (429)."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after

    def http(self) -> HTTPException:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        return HTTPException(self.status, self.detail, headers=headers)


def attempt_login(
    request: Request, session: Session, username: str, password: str, via: str | None = None
) -> tuple[User, str]:
    """Log in with the abuse limits applied (API and login page alike); failures are audited and committed.

    An address with too many recent failures is refused before the password is even checked; an
    account with too many failures in a row is locked for a while (Settings.login_*). Each attempt
    counts against its address as it starts (so parallel guesses count too) and is forgiven when it
    succeeds. Failures are tallied (``audit.tally``): a flood of them adds a bounded number of entries.
    """
    ctx = context_of(request)
    settings, addr = ctx.settings, client_addr(request) or "?"
    extra = {"via": via} if via else {}
    limits = tally.limits_of(settings)
    name = username[:64]
    wait = ctx.limits.login_failures.take(addr)
    if wait is not None:
        _failed(request, session, "auth.login_throttled", name, extra, limits)
        raise LoginRefused(429, f"too many failed logins from this address; try again in {wait} s", wait)
    try:
        result = service.login(
            session,
            username,
            password,
            settings.session_hours,
            client_addr(request),
            max_failures=settings.login_max_failures,
            lockout_minutes=settings.login_lockout_minutes,
        )
    except service.AccountLocked as exc:
        _failed(request, session, "auth.login_locked", name, {"locked_until": exc.until.isoformat(), **extra}, limits)
        raise LoginRefused(
            423, "account locked after too many failed logins; try again later or ask a system administrator"
        ) from exc
    if result is None:
        _failed(request, session, "auth.login_failed", name, extra, limits)
        raise LoginRefused(401, "wrong username or password")
    ctx.limits.login_failures.forgive(addr)
    user, token = result
    audit(
        session, "auth.login", request=request, actor=user, object_type="user", object_id=user.id, details=extra or None
    )
    session.commit()
    return user, token


def _failed(
    request: Request, session: Session, action: str, name: str, details: dict[str, Any], limits: tally.TallyLimits
) -> None:
    """A refused login, tallied (a flood of them adds a bounded number of entries) and committed."""
    tally.record_failure(
        session, action, request=request, subject=name, details={"username": name, **details}, **limits
    )
    session.commit()
