"""CSRF protection for the pages' forms: a token bound to the login session, in a hidden field.

A signed-in browser's token is derived from its session's secret token
(``evidence_server.security.csrf_token_for``): a cross-site page can make the browser send the
session cookie but cannot learn the token, a token taken from another session does not fit, and
every API process computes the same token without storing it. The login form has no session yet:
it uses a random token in a cookie and the same value in the field (double submit). The cookies
are also ``SameSite=Strict``. The API asks cookie-authenticated calls for the same token in the
``X-CSRF-Token`` header (``evidence_server.security``).
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from fastapi import Request, Response

from evidence_server.accounts.models import User
from evidence_server.audit import tally
from evidence_server.context import context_of
from evidence_server.security import bearer_token, csrf_token_for, csrf_valid, user_for_token

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CSRF_COOKIE = "custodia_csrf"
CSRF_FIELD = "csrf_token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _session_token(request: Request, user: User | None) -> str | None:
    """The caller's login-session token, if the page is shown to a signed-in user."""
    return bearer_token(request) if user is not None else None


def token_for(request: Request, user: User | None) -> str:
    """The token the page's forms carry: the session's, or (signed out) this browser's login token."""
    session_token = _session_token(request, user)
    if session_token:
        return csrf_token_for(session_token)
    current = request.cookies.get(CSRF_COOKIE)
    return current if current and 20 <= len(current) <= 100 else new_token()


def set_cookie(response: Response, request: Request, token: str, user: User | None) -> None:
    """Keep the login form's token in its cookie (signed-in pages need none: theirs is the session's)."""
    if _session_token(request, user) or request.cookies.get(CSRF_COOKIE) == token:
        return
    settings = context_of(request).settings
    response.set_cookie(CSRF_COOKIE, token, httponly=True, secure=settings.cookie_secure, samesite="strict", path="/")


def valid(request: Request, submitted: str | None, session: Session | None = None) -> bool:
    """Does the form's token fit: the session's for a signed-in caller, the login cookie's otherwise."""
    session_token = bearer_token(request)
    if session_token and (
        getattr(request.state, "user", None) is not None
        or (session is not None and user_for_token(session, session_token) is not None)
    ):
        return csrf_valid(session_token, submitted)
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def refused(request: Request, session: Session, user: User | None, submitted: str) -> Response | None:
    """None when the form's token fits; else the 403 page, the refusal tallied in the audit log."""
    if valid(request, submitted, session):
        return None
    settings = context_of(request).settings
    tally.record_failure(
        session,
        "web.csrf_rejected",
        request=request,
        subject=str(user.id) if user is not None else "",
        details={"path": request.url.path},
        **tally.limits_of(settings),
    )
    session.commit()
    from web_ui.render import render  # render shows the token on every page: it imports this module

    return render(request, "error.html", user=user, status_code=403, message="error.csrf")
