"""Who is calling, and may they? Deny by default: every route names the roles it admits.

A route admits callers through one of three guards, each marked with ``__custodia_roles__`` so a
test can walk the app and fail on any route that declares none:
``require_roles(...)`` for users, ``require_station`` for enrolled stations, ``public`` for the
few routes anyone may call (login, enrolment, health, the server key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import select

from evidence_server.accounts.models import LoginSession, Role, User
from evidence_server.accounts.secrets import STATION_TOKEN_PREFIX, USER_TOKEN_PREFIX, token_hash
from evidence_server.db import SessionDep, utcnow
from evidence_server.stations.models import Station
from evidence_server.stations.service import refusal, station_for_token

SESSION_COOKIE = "custodia_session"
ROLE_MARK = "__custodia_roles__"


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE)


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def _unauthorized(detail: str = "not authenticated") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def user_for_token(session: Any, token: str | None) -> User | None:
    if not token or not token.startswith(USER_TOKEN_PREFIX):
        return None
    login = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
    if login is None or login.revoked_at is not None or login.expires_at <= utcnow():
        return None
    return login.user if login.user.active else None


def require_roles(*roles: Role) -> Callable[..., User]:
    """A dependency admitting logged-in users whose role is one of ``roles``."""
    admitted = frozenset(roles)

    def guard(request: Request, session: SessionDep) -> User:
        user = user_for_token(session, bearer_token(request))
        if user is None:
            raise _unauthorized()
        if Role(user.role) not in admitted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        request.state.user = user
        return user

    setattr(guard, ROLE_MARK, frozenset(r.value for r in admitted))
    return guard


def require_station(request: Request, session: SessionDep) -> Station:
    """The enrolled station calling; a refused station is told why (revoked, enrolled again elsewhere,
    token rotated), in words its operator can act on: the agent shows the message."""
    token = bearer_token(request)
    station = station_for_token(session, token) if token and token.startswith(STATION_TOKEN_PREFIX) else None
    if station is None:
        code, message = refusal(session, token)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, {"code": code, "message": message}, headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.station = station
    return station


setattr(require_station, ROLE_MARK, frozenset({"station"}))


def public() -> None:
    """Marks a route anyone may call."""


setattr(public, ROLE_MARK, frozenset({"public"}))

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
        (",".join(sorted(route.methods)), path, declared_roles(route))
        for path, route in pairs
        if isinstance(route, APIRoute)
    ]
