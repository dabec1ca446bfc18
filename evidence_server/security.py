"""Who is calling, and may they? Deny by default: every route names the roles it admits.

A route admits callers through one of three guards, each marked with ``__custodia_roles__`` so a
test can walk the app and fail on any route that declares none:
``require_roles(...)`` for users, ``require_station`` for enrolled stations, ``public`` for the
few routes anyone may call (health, the server key), ``public_credentials`` for those of them that
check a secret (login, enrolment).

Anonymous traffic is bounded here too: public calls and failed authentications count against the
client's budget (``Limits.anonymous``, per address) and the secret-checking routes against one for
everyone (``Limits.credentials``); past either, 429 with Retry-After. A user authenticated by the
session cookie (a browser) must send the session's CSRF token with every state-changing API call;
a bearer token in the Authorization header (which no other site can make a browser send) needs none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import bindparam, select

from evidence_server.accounts.models import LoginSession, Role, User
from evidence_server.accounts.secrets import STATION_TOKEN_PREFIX, USER_TOKEN_PREFIX, token_hash
from evidence_server.audit import tally
from evidence_server.context import context_of
from evidence_server.db import SessionDep, utcnow
from evidence_server.limits import EVERYONE
from evidence_server.stations.models import Station
from evidence_server.stations.service import refusal, station_for_token

log = logging.getLogger(__name__)
SESSION_COOKIE = "custodia_session"
CSRF_HEADER = "X-CSRF-Token"
ROLE_MARK = "__custodia_roles__"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def header_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def bearer_token(request: Request) -> str | None:
    """The caller's token: the Authorization header's, else the session cookie's."""
    return header_token(request) or request.cookies.get(SESSION_COOKIE)


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a login session: derived from its secret token, so it is bound to that session
    (another session's token does not fit) and needs no storage, whichever API process checks it."""
    mac = hmac.new(session_token.encode(), b"custodia-csrf/1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_valid(session_token: str | None, submitted: str | None) -> bool:
    if not session_token or not submitted:
        return False
    return hmac.compare_digest(csrf_token_for(session_token).encode(), submitted.encode())


def client_addr(request: Request) -> str | None:
    """The client's address: the peer's, or the one a trusted proxy forwarded (evidence_server.proxies)."""
    return request.client.host if request.client else None


def _unauthorized(detail: str = "not authenticated") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def _too_many(wait: int, what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, f"too many {what}; try again in {wait} s", {"Retry-After": str(wait)}
    )


def _refused(request: Request, detail: str) -> HTTPException:
    """401 for a failed authentication, or 429 once the client has failed too often (``Limits.anonymous``)."""
    wait = context_of(request).limits.anonymous.take(client_addr(request) or "?")
    if wait is not None:
        return _too_many(wait, "requests without valid credentials from this address")
    return _unauthorized(detail)


#: The user of a live login (not revoked, not expired, the user active), in one statement built once: every
#: authenticated request runs it. The lookup was a quarter of a read's Python samples; building its WHERE and
#: cache key per request and loading the login beside its user were part of that (in process, a session and a
#: lookup: 876-884 -> 615-679 µs of CPU, BENCHMARKS).
_LIVE_LOGIN_USER = (
    select(User)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        LoginSession.token_hash == bindparam("token_hash"),
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > bindparam("now"),
        User.active.is_(True),
    )
)


def user_for_token(session: Any, token: str | None) -> User | None:
    if not token or not token.startswith(USER_TOKEN_PREFIX):
        return None
    user: User | None = session.scalar(_LIVE_LOGIN_USER, {"token_hash": token_hash(token), "now": utcnow()})
    return user


def require_roles(*roles: Role) -> Callable[..., User]:
    """A dependency admitting logged-in users whose role is one of ``roles``."""
    admitted = frozenset(roles)

    def guard(request: Request, session: SessionDep) -> User:
        token = bearer_token(request)
        user = user_for_token(session, token)
        if user is None:
            raise _refused(request, "not authenticated")
        if Role(user.role) not in admitted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        by_cookie = header_token(request) is None
        if by_cookie and _needs_csrf(request) and not csrf_valid(token, request.headers.get(CSRF_HEADER)):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a state-changing call with the session cookie needs the session's {CSRF_HEADER} header "
                "(GET /api/v1/auth/csrf), or use the Authorization header",
            )
        request.state.user = user
        return user

    setattr(guard, ROLE_MARK, frozenset(r.value for r in admitted))
    return guard


def _needs_csrf(request: Request) -> bool:
    """A state-changing API call (pages check their forms' token themselves: web_ui/csrf.py)."""
    return request.method not in SAFE_METHODS and request.url.path.startswith("/api/")


def require_station(request: Request, session: SessionDep) -> Station:
    """The enrolled station calling; a refused station is told why (revoked, enrolled again elsewhere,
    token rotated), in words its operator can act on: the agent shows the message."""
    token = header_token(request)  # never the cookie: a station is no browser
    station = station_for_token(session, token) if token and token.startswith(STATION_TOKEN_PREFIX) else None
    if station is None:
        code, message = refusal(session, token)
        throttled = _refused(request, message)  # a failure counts against the client's anonymous budget
        if throttled.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            raise throttled
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, {"code": code, "message": message}, headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.station = station
    return station


setattr(require_station, ROLE_MARK, frozenset({"station"}))


def public(request: Request) -> None:
    """Marks a route anyone may call; each call counts against the client's anonymous budget."""
    wait = context_of(request).limits.anonymous.take(client_addr(request) or "?")
    if wait is not None:
        log.warning("anonymous requests throttled for %s", client_addr(request))
        raise _too_many(wait, "requests from this address")


def public_credentials(request: Request, session: SessionDep) -> None:
    """Marks a public route that checks a secret (login, enrolment): the client's budget, then one for
    all clients together (each attempt costs a password hash or a database write); refusals are tallied."""
    ctx = context_of(request)
    try:
        public(request)
        wait = ctx.limits.credentials.take(EVERYONE)
        if wait is not None:
            raise _too_many(wait, "login and enrolment attempts on this server")
    except HTTPException:
        tally.record_failure(
            session,
            "auth.throttled",
            request=request,
            details={"path": request.url.path},
            **tally.limits_of(ctx.settings),
        )
        session.commit()
        raise


setattr(public, ROLE_MARK, frozenset({"public"}))
setattr(public_credentials, ROLE_MARK, frozenset({"public"}))

ALL_ROLES = tuple(Role)
AnyUser = Annotated[User, Depends(require_roles(*ALL_ROLES))]
CurrentStation = Annotated[Station, Depends(require_station)]


def declared_roles(route: Any) -> frozenset[str]:
    """The roles a route's guards admit (empty: the route declares none)."""
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        found |= set(getattr(dep.call, ROLE_MARK, ()))
        stack.extend(dep.dependencies)
    return frozenset(found)


def route_table(app: Any) -> list[tuple[str, str, frozenset[str]]]:
    """Every API route as (methods, path, roles): the route-to-role map the access tests check."""
    from fastapi.routing import APIRoute

    try:
        from fastapi.routing import iter_route_contexts

        pairs = [(ctx.path, ctx.original_route) for ctx in iter_route_contexts(app.routes)]
    except ImportError:  # FastAPI before included routers were kept lazily
        pairs = [(r.path, r) for r in app.routes]
    return [
        (",".join(sorted(route.methods or ())), str(path), declared_roles(route))
        for path, route in pairs
        if isinstance(route, APIRoute)
    ]
