from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from evidence_server.accounts import service
from evidence_server.accounts.login import LoginRefused, attempt_login, set_session_cookie
from evidence_server.accounts.models import USER_EVIDENCE, Role, Unit, User
from evidence_server.accounts.schemas import UnitOut, UserOut
from evidence_server.accounts.secrets import check_password
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.service import record as audit
from evidence_server.context import context_of
from evidence_server.db import SessionDep
from evidence_server.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    AnyUser,
    bearer_token,
    csrf_token_for,
    public_credentials,
    require_roles,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"])
Sysadmin = Annotated[User, Depends(require_roles(Role.sysadmin))]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


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
        details={"role": user.role, "unit_id": unit.id, "user": fields_of(user, USER_EVIDENCE)},
    )
    session.commit()
    return user


@router.get("/units", response_model=list[UnitOut])
def list_units(user: AnyUser, session: SessionDep) -> list[Unit]:
    q = select(Unit).order_by(Unit.code)
    if not user.sees_all_units:
        q = q.where(Unit.id == user.unit_id)
    return list(session.scalars(q))
