from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from evidence_server.db import Base, utcnow


class Role(enum.StrEnum):
    officer = "officer"
    device_admin = "device_admin"
    legal_affairs = "legal_affairs"
    case_handler = "case_handler"
    auditor = "auditor"
    sysadmin = "sysadmin"


#: what a user's row decides, as the log records it (``details.user`` of every ``user.*`` entry): who they are
#: (username, officer number), what they may do (role) and where (unit), and whether they may log in (active).
#: An insider who made themselves a sysadmin, or moved to another unit to see its footage, in the database is
#: named by the rows check (``evidence_server.binding``).
USER_EVIDENCE = ("username", "role", "unit_id", "officer_no", "active")

#: Roles that see every unit's records, not only their own unit's.
ALL_UNITS_ROLES = frozenset({Role.legal_affairs, Role.auditor, Role.sysadmin})


class Unit(Base):
    """An enforcement unit (执法机构): owns devices, stations and officers."""

    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    officer_no: Mapped[str | None] = mapped_column(String(32), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")  # in a row; reset by a login
    locked_until: Mapped[datetime | None]  # too many failed logins: refused until then

    unit: Mapped[Unit] = relationship(lazy="joined")

    @property
    def sees_all_units(self) -> bool:
        return Role(self.role) in ALL_UNITS_ROLES


class LoginSession(Base):
    """A login: only the SHA-256 of its bearer token is stored."""

    __tablename__ = "login_sessions"
    __table_args__ = (UniqueConstraint("token_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    client_addr: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")
