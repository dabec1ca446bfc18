"""Fixtures for the ledger: a migrated database (SQLite and PostgreSQL) with two units and their people,
an in-process API client with a bearer token per person, and a station."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from evidence_server.accounts.models import Role, User
from evidence_server.accounts.secrets import (
    hash_password,
)
from evidence_server.app import create_app
from evidence_server.config import Settings
from evidence_server.db import make_engine, make_sessionmaker
from evidence_server.ledger import service
from tests.support.site import seed_site

PASSWORD = "ledger-test-password"
GIB = 1024**3
#: (username, role, unit code, officer number, display name)
PEOPLE = (
    ("admin", Role.sysadmin, "U1", None, "系统管理员"),
    ("devadmin1", Role.device_admin, "U1", None, "王管理"),
    ("devadmin2", Role.device_admin, "U2", None, "周管理"),
    ("officer1", Role.officer, "U1", "102345", "张三"),
    ("officer2", Role.officer, "U1", "102346", "李四"),
    ("officer3", Role.officer, "U2", "202345", "赵五"),
    ("legal", Role.legal_affairs, "U2", None, "孙法规"),
    ("handler", Role.case_handler, "U1", None, "钱办案"),
)

UNITS = {"U1": "第一市场监管所", "U2": "第二市场监管所"}
GOOD = {"battery_percent": 95, "storage_free_bytes": 20 * GIB, "clock_offset_s": 1.5, "fault_found": False}


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once for every test user


@dataclass
class Site:
    url: str
    settings: Settings
    sessionmaker: sessionmaker[Session]
    users: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    station_token: str = ""
    station_id: int = 0

    def session(self) -> Session:
        return self.sessionmaker()

    def ctx(self, username: str | None, **kw: Any) -> service.Context:
        with self.session() as s:
            user = s.get(User, self.users[username]) if username else None
            if user is not None:
                _ = user.unit  # loaded while the session is open
        return service.Context(user, self.settings, **kw)


def seed(site: Site) -> None:
    with site.session() as s:
        seed_site(s, site, PEOPLE, password_hash(), UNITS)


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path / "server", database_url=database_url, environment="test", cookie_secure=False
    )
    engine = make_engine(database_url)
    site = Site(database_url, settings, make_sessionmaker(engine))
    seed(site)
    yield site
    engine.dispose()


class Api:
    """The API as each seeded person (``api.as_("officer1").post(...)``)."""

    def __init__(self, client: TestClient, site: Site) -> None:
        self.client, self.site = client, site

    def headers(self, who: str) -> dict[str, str]:
        token = self.site.station_token if who == "station" else self.site.tokens[who]
        return {"Authorization": f"Bearer {token}"}

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=self.headers(who), **kw)
        return response

    def post(self, who: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(
            path, json=body if body is not None else {}, headers=self.headers(who), **kw
        )
        return response

    def put(self, who: str, path: str, body: Any) -> httpx.Response:
        response: httpx.Response = self.client.put(path, json=body, headers=self.headers(who))
        return response

    # conveniences --------------------------------------------------------------------------

    def register(self, serial: str, who: str = "devadmin1", **extra: Any) -> dict[str, Any]:
        r = self.post(who, "/api/v1/devices", {"serial": serial, "model": "DSJ-V9", "family": "mass_storage", **extra})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def checkout(
        self,
        serial: str,
        who: str = "devadmin1",
        officer: str | None = "officer1",
        readings: dict[str, Any] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "serial": serial,
            "enforcement_matter": "食品安全日常检查",
            "case_number": "市监案〔2026〕18号",
            "case_name": "某超市过期食品案",
            "readings": GOOD if readings is None else readings,
            "expected_return_at": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
            **extra,
        }
        if officer is not None:
            body["officer_id"] = self.site.users[officer]
        return self.post(who, "/api/v1/ledger/checkouts", body)

    def give_back(self, serial: str, who: str = "devadmin1", condition: str = "good", **extra: Any) -> httpx.Response:
        return self.post(who, "/api/v1/ledger/returns", {"serial": serial, "condition": condition, **extra})


@pytest.fixture
def api(site: Site) -> Iterator[Api]:
    with TestClient(create_app(site.settings, with_web=False)) as client:
        yield Api(client, site)
