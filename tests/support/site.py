"""A seeded site for API tests: two units, people with login tokens, one enrolled station."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from evidence_server.accounts.models import LoginSession, Role, Unit, User
from evidence_server.accounts.secrets import STATION_TOKEN_PREFIX, USER_TOKEN_PREFIX, new_token, token_hash
from evidence_server.stations.models import Station

UNITS = {"U1": "第一市场监管所", "U2": "第二市场监管所"}
Person = tuple[str, Role, str, str | None, str]  # username, role, unit code, officer number, display name


def seed_site(
    session: Any, target: Any, people: Iterable[Person], password_hash: str, units: dict[str, str] = UNITS
) -> None:
    """Create units, users (with a login token each) and station ``采集站-1``; record their ids on ``target``
    (``users``, ``tokens``, ``station_token``, ``units``, ``station_id``) and commit."""
    rows = {code: Unit(code=code, name=name) for code, name in units.items()}
    session.add_all(rows.values())
    session.flush()
    for username, role, unit, number, name in people:
        user = User(
            username=username,
            display_name=name,
            password_hash=password_hash,
            role=role.value,
            unit_id=rows[unit].id,
            officer_no=number,
        )
        session.add(user)
        session.flush()
        token = new_token(USER_TOKEN_PREFIX)
        session.add(
            LoginSession(
                token_hash=token_hash(token), user_id=user.id, expires_at=datetime.now(UTC) + timedelta(hours=2)
            )
        )
        target.users[username], target.tokens[username] = user.id, token
    target.station_token = new_token(STATION_TOKEN_PREFIX)
    station = Station(
        name="采集站-1",
        unit_id=rows["U1"].id,
        token_hash=token_hash(target.station_token),
        enrolled_at=datetime.now(UTC),
    )
    session.add(station)
    session.commit()
    target.units = {code: u.id for code, u in rows.items()}
    target.station_id = station.id
