from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import LoginSession, Role, Unit, User
from evidence_server.accounts.secrets import USER_TOKEN_PREFIX, check_password, hash_password, new_token, token_hash
from evidence_server.db import utcnow


class AccountError(ValueError):
    pass


def ensure_unit(session: Session, code: str, name: str) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        unit = Unit(code=code, name=name)
        session.add(unit)
        session.flush()
    return unit


def unit_in_reach(session: Session, user: User, unit_id: int | None) -> Unit | None:
    """The unit ``user`` may act in by this id: any unit for those who see every unit, else their own.

    None both for a unit that does not exist and for another unit, so that a caller answering
    "no such unit" for either reveals nothing about the other units.
    """
    if unit_id is None or not (user.sees_all_units or unit_id == user.unit_id):
        return None
    return session.get(Unit, unit_id)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    unit: Unit,
    display_name: str | None = None,
    officer_no: str | None = None,
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=Role(role).value,
        unit_id=unit.id,
        officer_no=officer_no,
    )
    session.add(user)
    session.flush()
    return user


class AccountLocked(AccountError):
    """Too many failed logins in a row: the account refuses every login until ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"account locked after too many failed logins, until {until.isoformat(timespec='seconds')}")
        self.until = until


def login(
    session: Session,
    username: str,
    password: str,
    hours: int,
    client: str | None,
    *,
    max_failures: int = 5,
    lockout_minutes: int = 15,
) -> tuple[User, str] | None:
    """A new login session, or None for a wrong username or password.

    ``max_failures`` wrong passwords in a row lock the account for ``lockout_minutes``: while it is
    locked, AccountLocked is raised whatever the password (so guessing on cannot tell a right one).
    The caller commits, failures included.
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        return None
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(user.locked_until)
    if not check_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if max_failures > 0 and user.failed_logins >= max_failures:
            user.locked_until = now + timedelta(minutes=lockout_minutes)
            user.failed_logins = 0
            raise AccountLocked(user.locked_until)
        return None
    user.failed_logins, user.locked_until = 0, None
    token = new_token(USER_TOKEN_PREFIX)
    session.add(
        LoginSession(
            token_hash=token_hash(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(hours=hours),
            client_addr=client,
        )
    )
    return user, token


def logout(session: Session, token: str) -> None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
