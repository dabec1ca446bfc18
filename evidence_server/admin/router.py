"""Administration over HTTP: units, users and roles (stations: /api/v1/stations); the pages use the same service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from evidence_server.accounts import schemas as accounts_schemas
from evidence_server.accounts.models import Role, User
from evidence_server.accounts.schemas import UnitOut
from evidence_server.admin import rules, service
from evidence_server.db import SessionDep
from evidence_server.security import require_roles

router = APIRouter(prefix="/api/v1/admin", tags=["administration"])
Admin = Annotated[User, Depends(require_roles(*rules.ADMINS))]
Sysadmin = Annotated[User, Depends(require_roles(Role.sysadmin))]


def _http(exc: service.AdminError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


class UnitIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    unit_id: int
    display_name: str | None = Field(default=None, max_length=200)
    officer_no: str | None = Field(default=None, max_length=32)


class UserChange(BaseModel):
    active: bool | None = None
    role: Role | None = None


class UserOut(accounts_schemas.UserOut):
    active: bool


class NewUserOut(UserOut):
    password: str  # generated, shown once


class PasswordOut(BaseModel):
    username: str
    password: str  # generated, shown once


class StationIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    unit_id: int


class StationOut(BaseModel):
    id: int
    name: str
    unit_id: int
    enrolled_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None


class CodeOut(BaseModel):
    station_id: int
    enrolment_code: str  # shown once
    expires_at: datetime


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/units", response_model=list[UnitOut])
def list_units(user: Admin, session: SessionDep) -> list[UnitOut]:
    return [UnitOut.model_validate(u, from_attributes=True) for u in service.units_visible(session, user)]


@router.post("/units", response_model=UnitOut, status_code=201)
def create_unit(body: UnitIn, request: Request, user: Sysadmin, session: SessionDep) -> UnitOut:
    try:
        unit = service.create_unit(session, user, code=body.code, name=body.name, request=request)
    except service.AdminError as exc:
        raise _http(exc) from exc
    session.commit()
    return UnitOut.model_validate(unit, from_attributes=True)


@router.get("/users", response_model=list[UserOut])
def list_users(user: Admin, session: SessionDep) -> list[UserOut]:
    return [_user_out(u) for u in service.users_visible(session, user)]


@router.post("/users", response_model=NewUserOut, status_code=201)
def create_user(body: UserIn, request: Request, user: Admin, session: SessionDep) -> NewUserOut:
    """Create a user with a generated password (in the answer, once)."""
    try:
        made = service.create_user(session, user, **body.model_dump(), request=request)
    except service.AdminError as exc:
        raise _http(exc) from exc
    session.commit()
    return NewUserOut(**_user_out(made.user).model_dump(), password=made.password or "")


@router.patch("/users/{user_id}", response_model=UserOut)
def change_user(user_id: int, body: UserChange, request: Request, user: Admin, session: SessionDep) -> UserOut:
    """Disable or enable a user, or change their role (their logins end)."""
    try:
        target = service.find_user(session, user, user_id)
        if body.role is not None:
            target = service.set_role(session, user, user_id, body.role, request=request)
        if body.active is not None:
            target = service.set_active(session, user, user_id, body.active, request=request)
    except service.AdminError as exc:
        raise _http(exc) from exc
    session.commit()
    return _user_out(target)


@router.post("/users/{user_id}/password", response_model=PasswordOut)
def reset_password(user_id: int, request: Request, user: Admin, session: SessionDep) -> PasswordOut:
    """A new generated password, in the answer once; the user's logins end and a lockout lifts."""
    try:
        target, password, _ended = service.reset_password(session, user, user_id, request=request)
    except service.AdminError as exc:
        raise _http(exc) from exc
    session.commit()
    return PasswordOut(username=target.username, password=password)
