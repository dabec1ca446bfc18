from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from evidence_server.accounts import service
from evidence_server.accounts.models import Role, Unit, User
from evidence_server.accounts.secrets import check_password
from evidence_server.audit import tally
from evidence_server.audit.service import record as audit
from evidence_server.context import context_of
from evidence_server.db import SessionDep
from evidence_server.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    AnyUser,
    bearer_token,
    client_addr,
    csrf_token_for,
    public_credentials,
    require_roles,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"])
Sysadmin = Annotated[User, Depends(require_roles(Role.sysadmin))]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    unit_id: int
    officer_no: str | None


class LoginOut(BaseModel):
    token: str
    user: UserOut


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[\w.\-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    unit_id: int
    display_name: str | None = Field(default=None, max_length=200)
    officer_no: str | None = Field(default=None, max_length=32)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=10, max_length=256)


class UnitOut(BaseModel):
    id: int
    code: str
    name: str


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
    request: Request, session: SessionDep, username: str, password: str, via: str | None = None
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
        tally.record_failure(
            session,
            "auth.login_throttled",
            request=request,
            subject=name,
            details={"username": name, **extra},
            **limits,
        )
        session.commit()
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
        tally.record_failure(
            session,
            "auth.login_locked",
            request=request,
            subject=name,
            details={"username": name, "locked_until": exc.until.isoformat(), **extra},
            **limits,
        )
        session.commit()
        raise LoginRefused(
            423, "account locked after too many failed logins; try again later or ask a system administrator"
        ) from exc
    if result is None:
        tally.record_failure(
            session, "auth.login_failed", request=request, subject=name, details={"username": name, **extra}, **limits
        )
        session.commit()
        raise LoginRefused(401, "wrong username or password")
    ctx.limits.login_failures.forgive(addr)
    user, token = result
    audit(
        session, "auth.login", request=request, actor=user, object_type="user", object_id=user.id, details=extra or None
    )
    session.commit()
    return user, token


@router.post(
    "/auth/login",
    response_model=LoginOut,
    dependencies=[Depends(public_credentials)],
    responses={
        401: {"description": "wrong username or password"},
        423: {"description": "account locked after too many failed logins"},
        429: {"description": "too many failed logins from this address"},
    },
)
def login(body: LoginIn, request: Request, response: Response, session: SessionDep) -> LoginOut:
    """Log in; the token comes back in the body (API clients) and as an HttpOnly cookie (pages)."""
    try:
        user, token = attempt_login(request, session, body.username, body.password)
    except LoginRefused as exc:
        raise exc.http() from exc
    set_session_cookie(response, request, token)
    return LoginOut(token=token, user=UserOut.model_validate(user, from_attributes=True))


@router.post("/auth/logout", status_code=204)
def logout(request: Request, user: AnyUser, session: SessionDep) -> Response:
    token = bearer_token(request)
    if token:
        service.logout(session, token)
    audit(session, "auth.logout", request=request, object_type="user", object_id=user.id)
    session.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post(
    "/auth/password",
    status_code=204,
    responses={
        403: {"description": "the current password is wrong"},
        422: {"description": "the new password breaks the password rule"},
        423: {"description": "account locked after too many failed logins"},
    },
)
def change_password(body: PasswordChangeIn, request: Request, user: AnyUser, session: SessionDep) -> Response:
    """Change one's own password; every other login session of the user ends (this one stays)."""
    settings = context_of(request).settings
    if not check_password(user.password_hash, body.current_password):
        try:  # a stolen session must not become a way to guess the password without lockout
            service.record_failure(
                session,
                user.id,
                max_failures=settings.login_max_failures,
                lockout_minutes=settings.login_lockout_minutes,
            )
        except service.AccountLocked:
            audit(session, "auth.login_locked", request=request, object_type="user", object_id=user.id)
            session.commit()
            raise HTTPException(423, "account locked after too many failed logins") from None
        audit(session, "auth.password_change_failed", request=request, object_type="user", object_id=user.id)
        session.commit()
        raise HTTPException(403, "the current password is wrong")
    token = bearer_token(request) or ""
    try:
        ended = service.set_password(session, user, body.new_password, keep=service.session_for_token(session, token))
    except service.WeakPassword as exc:
        raise HTTPException(422, str(exc)) from exc
    audit(
        session,
        "auth.password_changed",
        request=request,
        object_type="user",
        object_id=user.id,
        details={"sessions_ended": ended},
    )
    session.commit()
    return Response(status_code=204)


class CsrfOut(BaseModel):
    token: str
    header: str


@router.get("/auth/csrf", response_model=CsrfOut)
def csrf_token(request: Request, user: AnyUser) -> CsrfOut:
    """The CSRF token of this login session, for state-changing calls made with the session cookie."""
    return CsrfOut(token=csrf_token_for(bearer_token(request) or ""), header=CSRF_HEADER)


@router.get("/auth/me", response_model=UserOut)
def me(user: AnyUser) -> User:
    return user


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, request: Request, admin: Sysadmin, session: SessionDep) -> User:
    unit = session.get(Unit, body.unit_id)
    if unit is None:
        raise HTTPException(422, "no such unit")
    try:
        user = service.create_user(
            session,
            username=body.username,
            password=body.password,
            role=body.role,
            unit=unit,
            display_name=body.display_name,
            officer_no=body.officer_no,
        )
    except service.WeakPassword as exc:
        raise HTTPException(422, str(exc)) from exc
    except service.AccountError as exc:
        raise HTTPException(409, str(exc)) from exc
    audit(
        session,
        "user.created",
        request=request,
        object_type="user",
        object_id=user.id,
        details={"role": user.role, "unit_id": unit.id},
    )
    session.commit()
    return user


@router.get("/units", response_model=list[UnitOut])
def list_units(user: AnyUser, session: SessionDep) -> list[Unit]:
    q = select(Unit).order_by(Unit.code)
    if not user.sees_all_units:
        q = q.where(Unit.id == user.unit_id)
    return list(session.scalars(q))
