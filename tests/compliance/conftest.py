"""Fixtures for the compliance engine: a migrated database (SQLite and PostgreSQL) with two units and
their people, factories for docks, recordings and ledger entries, and an in-process API client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from custodia_wire.documents import utc_iso
from evidence_server.accounts.models import Role, User
from evidence_server.accounts.secrets import (
    hash_password,
)
from evidence_server.app import create_app
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.config import Settings
from evidence_server.db import make_engine, make_sessionmaker
from evidence_server.ledger import docks as ledger_docks
from evidence_server.ledger import service as ledger
from evidence_server.ledger.rules import Condition
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station
from evidence_server.transfers import service as transfers
from tests.support.site import seed_site

PASSWORD = "compliance-test-password"
GIB = 1024**3
BJ = timezone(timedelta(hours=8))
#: (username, role, unit code, officer number, display name)
PEOPLE = (
    ("admin", Role.sysadmin, "U1", None, "系统管理员"),
    ("devadmin1", Role.device_admin, "U1", None, "王管理"),
    ("devadmin2", Role.device_admin, "U2", None, "周管理"),
    ("officer1", Role.officer, "U1", "102345", "张三"),
    ("officer2", Role.officer, "U1", "102346", "李四"),
    ("officer3", Role.officer, "U2", "202345", "赵五"),
    ("legal", Role.legal_affairs, "U1", None, "孙法规"),
    ("auditor", Role.auditor, "U2", None, "吴审计"),
    ("handler", Role.case_handler, "U1", None, "钱办案"),
)

UNITS = {"U1": "第一市场监管所", "U2": "第二市场监管所"}
GOOD = {"battery_percent": 95, "storage_free_bytes": 20 * GIB, "clock_offset_s": 1.5, "fault_found": False}


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Site:
    settings: Settings
    sessionmaker: sessionmaker[Session]
    users: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    station_token: str = ""
    station_id: int = 0

    def session(self) -> Session:
        return self.sessionmaker()

    def ctx(self, username: str) -> ledger.Context:
        with self.session() as s:
            user = s.get(User, self.users[username])
            assert user is not None
            _ = user.unit
        return ledger.Context(user, self.settings)

    # --- factories: the ledger through its service, docks and recordings as a station leaves them ---

    def register(self, serial: str, unit: str = "U1", family: str = "zfy") -> None:
        with self.session() as s:
            ledger.register_device(
                s,
                self.ctx("admin"),
                serial=serial,
                unit_id=self.units[unit],
                model="DSJ-V9",
                family=family,
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            s.commit()

    def checkout(
        self,
        serial: str,
        at: datetime,
        back: datetime | None,
        *,
        officer: str = "officer1",
        expected: datetime | None = None,
        clock_offset_s: float = 1.5,
    ) -> int:
        readings = {**GOOD, "clock_offset_s": clock_offset_s}
        with self.session() as s:
            entry = ledger.checkout(
                s,
                self.ctx("devadmin1"),
                serial=serial,
                officer_id=self.users[officer],
                occurred_at=at,
                readings=readings,
                override_reason="test" if abs(clock_offset_s) > 60 else None,
                task=ledger.Task("食品安全检查", expected or at + timedelta(hours=4)),
            )
            s.commit()
            entry_id = entry.id
            if back is not None:
                ledger.return_device(
                    s, self.ctx("devadmin1"), serial=serial, condition=Condition.good, occurred_at=back
                )
                s.commit()
        return entry_id

    def dock(
        self,
        serial: str,
        at: datetime,
        files: list[dict[str, Any]],
        *,
        officer_no: str | None = "102345",
        clock_offset_s: float | None = None,
    ) -> str:
        """A dock: the device's index (``files``: path, size, started_at) as the station sends it."""
        tid = str(uuid.uuid4())
        status = (
            {"read_at": utc_iso(at), "clock": utc_iso(at + timedelta(seconds=clock_offset_s))}
            if clock_offset_s is not None
            else {}
        )
        payload = {
            "transfer_id": tid,
            "device": {"serial": serial, "family": "zfy"},
            "officer": {"number": officer_no},
            "docked_at": utc_iso(at),
            "device_status": status,
            "index": [
                {
                    "path": f["path"],
                    "size": f["size"],
                    "started_at": utc_iso(f["started_at"]),
                    "mtime": utc_iso(f["started_at"] + timedelta(seconds=f.get("seconds", 300))),
                }
                for f in files
            ],
        }
        with self.session() as s:
            station = s.get(Station, self.station_id)
            opened = transfers.open_transfer(s, station, payload)
            ledger_docks.on_dock(s, opened.transfer)
            s.commit()
        return tid

    def arrive(self, transfer_id: str, f: dict[str, Any], verified_at: datetime, **media: Any) -> int:
        """A recording of that dock verified by the server at ``verified_at``."""
        seconds = f.get("seconds", 300)
        with self.session() as s:
            t = s.get(transfers.Transfer, transfer_id)
            assert t is not None
            rec = Recording(
                blake3=f"blake3:{uuid.uuid4().hex}",
                sha256=f"sha256:{uuid.uuid4().hex}",
                size=f["size"],
                storage_key=uuid.uuid4().hex,
                unit_id=t.unit_id,
                station_id=t.station_id,
                transfer_id=t.id,
                device_serial=t.device_serial,
                officer_no=t.officer_no,
                original_path=f["path"],
                original_name=f["path"].rsplit("/", 1)[-1],
                name_started_at=f["started_at"],
                name_ended_at=f["started_at"] + timedelta(seconds=seconds),
                container_created_at=f["started_at"],
                probe_state="done",
                duration_s=float(seconds),
                codec="h264",
                width=1920,
                height=1080,
                encoder="ZFY DSJ H.264 V1.0",
                docked_at=t.docked_at,
                uploaded_at=verified_at,
                verified_at=verified_at,
                **media,
            )
            s.add(rec)
            s.commit()
            return rec.id

    def flags(self, **where: Any) -> list[ComplianceFlag]:
        with self.session() as s:
            q = select(ComplianceFlag).where(*(getattr(ComplianceFlag, k) == v for k, v in where.items()))
            return list(s.scalars(q.order_by(ComplianceFlag.id)))


def segment(serial: str, n: int, start: datetime, seconds: int = 300) -> dict[str, Any]:
    local = start.astimezone(BJ)
    return {
        "path": f"DCIM/{local:%Y%m%d}/{serial}_102345_{local:%Y%m%d%H%M%S}_{n:04d}.MP4",
        "size": 1_000_000 + n,
        "started_at": start,
        "seconds": seconds,
    }


def seed(site: Site) -> None:
    with site.session() as s:
        seed_site(s, site, PEOPLE, password_hash(), UNITS)


def make_site(database_url: str, tmp_path: Path, **overrides: Any) -> tuple[Site, Any]:
    overrides.setdefault("compliance_min_recorded_ratio", 0.05)  # short footage has its own tests
    settings = Settings(
        data_dir=tmp_path / "server", database_url=database_url, environment="test", cookie_secure=False, **overrides
    )
    engine = make_engine(database_url)
    site = Site(settings, make_sessionmaker(engine))
    seed(site)
    return site, engine


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[Site]:
    site, engine = make_site(database_url, tmp_path)
    yield site
    engine.dispose()


@pytest.fixture
def sqlite_site(sqlite_url: str, tmp_path: Path) -> Iterator[Site]:
    site, engine = make_site(sqlite_url, tmp_path)
    yield site
    engine.dispose()


class Api:
    """The API as each seeded person (``api.get("legal", …)``)."""

    def __init__(self, client: TestClient, site: Site) -> None:
        self.client, self.site = client, site

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.site.tokens[who]}"}

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(who), **kw)

    def post(self, who: str, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body if body is not None else {}, headers=self.headers(who))

    def drain(self) -> None:
        self.client.app.state.ctx.tasks.drain()  # type: ignore[attr-defined]


@pytest.fixture
def api(site: Site) -> Iterator[Api]:
    with TestClient(create_app(site.settings, with_web=False)) as client:
        yield Api(client, site)
