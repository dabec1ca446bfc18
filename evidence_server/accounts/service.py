from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Update, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from evidence_server.accounts.models import LoginSession, Role, Unit, User
from evidence_server.accounts.passwords import password_problem
from evidence_server.accounts.secrets import (
    USER_TOKEN_PREFIX,
    check_password,
    hash_password,
    new_token,
    token_hash,
    verify_nothing,
)
from evidence_server.db import utcnow


class AccountError(ValueError):
    pass


class WeakPassword(AccountError):
    """The password breaks the password rule (too short, too plain, or a common one)."""


def checked_password_hash(password: str) -> str:
    """The hash of ``password`` if it passes the password rule, else WeakPassword."""
    problem = password_problem(password)
    if problem is not None:
        raise WeakPassword(problem)
    return hash_password(password)


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
        password_hash=checked_password_hash(password),
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
    Failures are counted by one atomic UPDATE, so wrong passwords sent in parallel all count; an
    unknown username costs one password verification like a known one, so time does not tell them
    apart. The caller commits, failures included.
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        verify_nothing(password)
        return None
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(user.locked_until)
    if not check_password(user.password_hash, password):
        record_failure(session, user.id, max_failures=max_failures, lockout_minutes=lockout_minutes)
        return None
    opened = execute_update(
        session,
        update(User)
        .where(User.id == user.id, or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(failed_logins=0, locked_until=None),
    )
    if opened == 0:  # locked by failures that arrived while this password was checked
        session.refresh(user)
        raise AccountLocked(user.locked_until or now)
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


def record_failure(session: Session, user_id: int, *, max_failures: int, lockout_minutes: int) -> None:
    """Count one wrong password atomically (``failed_logins + 1`` in the database, not in Python);
    the failure that reaches ``max_failures`` locks the account (AccountLocked)."""
    failures = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    if max_failures > 0 and failures >= max_failures:
        until = utcnow() + timedelta(minutes=lockout_minutes)
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(locked_until=until, failed_logins=0)
            .execution_options(synchronize_session=False)
        )
        raise AccountLocked(until)


def set_password(session: Session, user: User, password: str, *, keep: LoginSession | None = None) -> int:
    """Give ``user`` a new password (the password rule applies), lift a lockout, and end every login
    session of theirs but ``keep``: whoever knew the old password is logged out. Returns how many ended."""
    user.password_hash = checked_password_hash(password)
    user.failed_logins, user.locked_until = 0, None
    return execute_update(
        session,
        update(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.revoked_at.is_(None),
            LoginSession.id != (keep.id if keep is not None else -1),
        )
        .values(revoked_at=utcnow()),
    )


def execute_update(session: Session, statement: Update) -> int:
    """Run an UPDATE in the database (not on loaded objects) and return how many rows it changed."""
    result = cast("CursorResult[Any]", session.execute(statement.execution_options(synchronize_session=False)))
    return int(result.rowcount or 0)


def session_for_token(session: Session, token: str) -> LoginSession | None:
    return session.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))


def logout(session: Session, token: str) -> None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


# --- lookups the pages show ------------------------------------------------------------------------------


def units(session: Session) -> list[Unit]:
    """Every unit, by code."""
    return list(session.scalars(select(Unit).order_by(Unit.code)))


def unit(session: Session, unit_id: int | None) -> Unit | None:
    return session.get(Unit, unit_id) if unit_id is not None else None


def users_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, User]:
    """The users with these ids (to name who did something), by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def active_users_in_roles(session: Session, roles: Iterable[Role]) -> list[User]:
    """The active users holding one of these roles, by username (for pickers such as reviewers)."""
    q = select(User).where(User.role.in_([Role(r).value for r in roles]), User.active.is_(True))
    return list(session.scalars(q.order_by(User.username)))


def everyone(session: Session) -> dict[int, User]:
    """Every user by id (to name who did what on a page that may show anyone)."""
    return {u.id: u for u in session.scalars(select(User))}


def unit_names(session: Session) -> dict[int, str]:
    return {u.id: u.name for u in session.scalars(select(Unit))}


def by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip())) if username.strip() else None


def by_unit_code(session: Session, code: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.code == code.strip())) if code.strip() else None
