"""Double-submit CSRF protection for the form POSTs: a random token in a cookie and in a hidden field.

A cross-site page can make the browser send the cookie but cannot read it, so it cannot put the
same value in the form. The cookie is also ``SameSite=Strict``; the token is renewed at login.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from evidence_server.context import context_of

CSRF_COOKIE = "custodia_csrf"
CSRF_FIELD = "csrf_token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_for(request: Request) -> str:
    """The token of this browser, or a fresh one (``set_cookie`` stores it with the response)."""
    current = request.cookies.get(CSRF_COOKIE)
    return current if current and 20 <= len(current) <= 100 else new_token()


def set_cookie(response: Response, request: Request, token: str) -> None:
    ctx = context_of(request)
    if request.cookies.get(CSRF_COOKIE) == token:
        return
    settings = ctx.settings
    response.set_cookie(CSRF_COOKIE, token, httponly=True, secure=settings.cookie_secure, samesite="strict", path="/")


def valid(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())
