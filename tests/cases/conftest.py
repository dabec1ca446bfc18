"""Fixtures for cases: a migrated, seeded site (two units and their people, one station), the API as
each person (in process), and recordings put into the object store with their real fingerprints."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from custodia_wire import fingerprint
from evidence_server.accounts.models import Role
from evidence_server.accounts.secrets import (
    hash_password,
)
from evidence_server.app import create_app
from evidence_server.audit.service import record
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer, docked_evidence
from tests.support.databases import SqliteTemplates
from tests.support.site import seed_site

PASSWORD = "cases-test-password"
GIB = 1024**3
GOOD = {"battery_percent": 95, "storage_free_bytes": 20 * GIB, "clock_offset_s": 0.5, "fault_found": False}
#: (username, role, unit code, officer number, display name)
PEOPLE = (
    ("admin", Role.sysadmin, "U1", None, "系统管理员"),
    ("devadmin1", Role.device_admin, "U1", None, "王管理"),
    ("officer1", Role.officer, "U1", "102345", "张三"),
    ("officer2", Role.officer, "U1", "102346", "李四"),
    ("handler", Role.case_handler, "U1", None, "钱办案"),
    ("handler2", Role.case_handler, "U2", None, "周办案"),
    ("legal", Role.legal_affairs, "U2", None, "孙法规"),
    ("auditor", Role.auditor, "U2", None, "吴审计"),
)
UNITS = {"U1": "第一市场监管所", "U2": "第二市场监管所"}
CASE_NO = "杭西市监处罚〔2026〕101号"


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class World:
    settings: Settings
    app: FastAPI
    client: TestClient
    users: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    station_id: int = 0
    station_token: str = ""

    @property
    def ctx(self) -> ServerContext:
        return self.app.state.ctx  # type: ignore[no-any-return]

    def session(self) -> Any:
        return self.ctx.sessionmaker()

    def headers(self, who: str) -> dict[str, str]:
        token = self.station_token if who == "station" else self.tokens[who]
        return {"Authorization": f"Bearer {token}"}

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers={**self.headers(who), **kw.pop("headers", {})}, **kw)

    def post(self, who: str, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body if body is not None else {}, headers=self.headers(who))

    def put(self, who: str, path: str, body: Any) -> httpx.Response:
        return self.client.put(path, json=body, headers=self.headers(who))

    def patch(self, who: str, path: str, body: Any) -> httpx.Response:
        return self.client.patch(path, json=body, headers=self.headers(who))

    # --- conveniences -------------------------------------------------------------------------

    def open_case(
        self, number: str = CASE_NO, name: str = "某超市销售过期食品案", who: str = "handler", **extra: Any
    ) -> dict[str, Any]:
        r = self.post(
            who, "/api/v1/cases", {"number": number, "name": name, "enforcement_matter": "食品安全监督检查", **extra}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def transfer(
        self,
        serial: str,
        officer: tuple[str, str] | None = ("102345", "张三"),
        unit: str = "U1",
        docked_at: datetime | None = None,
        clock_offset_s: float | None = 0.0,
    ) -> str:
        transfer_id = str(uuid.uuid4())
        with self.session() as s:
            transfer = Transfer(
                id=transfer_id,
                station_id=self.station_id,
                unit_id=self.units[unit],
                device_serial=serial,
                device={"serial": serial, "family": "mass_storage"},
                officer_no=officer[0] if officer else None,
                officer_name=officer[1] if officer else None,
                docked_at=docked_at or datetime.now(UTC),
                clock_offset_s=clock_offset_s,
                index=[],
                state="done",
            )
            s.add(transfer)
            s.flush()
            # as the dock records it: what the log binds the transfer to
            record(
                s, "transfer.docked", object_type="transfer", object_id=transfer_id, details=docked_evidence(transfer)
            )
            s.commit()
        return transfer_id

    def recording(
        self,
        data: bytes | Path,
        *,
        serial: str = "DSJ-A001",
        name: str | None = None,
        officer: tuple[str, str] | None = ("102345", "张三"),
        unit: str = "U1",
        started_at: datetime | None = None,
        seconds: float = 60.0,
        transfer_id: str | None = None,
        **facts: Any,
    ) -> int:
        """A verified recording as the upload receiver leaves it: bytes in the store, its fingerprints (SM3
        too; ``sm3=None`` in ``facts``: one stored before the server computed SM3)."""
        raw = data.read_bytes() if isinstance(data, Path) else data
        fp = fingerprint.of_bytes(raw, sm3=True)
        staged = self.settings.data_dir / f"staged-{uuid.uuid4().hex}"
        staged.write_bytes(raw)
        key = self.ctx.store.put_verified(staged, fp.blake3_hex, fp.sha256_hex, fp.size)
        transfer_id = transfer_id or self.transfer(serial, officer, unit)
        start = started_at or datetime.now(UTC) - timedelta(hours=2)
        name = name or (data.name if isinstance(data, Path) else f"{serial}_{start:%Y%m%d%H%M%S}.MP4")
        now = datetime.now(UTC)
        values: dict[str, Any] = dict(
            blake3=fp.blake3,
            sha256=fp.sha256,
            sm3=fp.sm3,
            size=fp.size,
            storage_key=key,
            unit_id=self.units[unit],
            station_id=self.station_id,
            transfer_id=transfer_id,
            device_serial=serial,
            officer_no=officer[0] if officer else None,
            officer_name=officer[1] if officer else None,
            original_path=f"DCIM/{name}",
            original_name=name,
            name_started_at=start,
            name_ended_at=start + timedelta(seconds=seconds),
            duration_s=seconds,
            docked_at=now - timedelta(minutes=30),
            uploaded_at=now - timedelta(minutes=20),
            verified_at=now - timedelta(minutes=20),
        )
        values.update(facts)
        with self.session() as s:
            rec = Recording(**values)
            s.add(rec)
            s.flush()
            # as the upload receiver records it: the digests the log binds the recording to
            record(
                s,
                "recording.verified",
                object_type="recording",
                object_id=rec.id,
                details={
                    "path": rec.original_path,
                    "blake3": rec.blake3,
                    "sha256": rec.sha256,
                    **({"sm3": rec.sm3} if rec.sm3 else {}),
                    "size": rec.size,
                    "unit_id": rec.unit_id,
                    "device_serial": rec.device_serial,
                    "officer_no": rec.officer_no,
                    "transfer_id": rec.transfer_id,
                },
            )
            s.commit()
            return rec.id


def seed(world: World) -> None:
    with world.session() as s:
        seed_site(s, world, PEOPLE, password_hash(), UNITS)


def make_world(tmp_path: Path, url: str, **overrides: Any) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path / "server", database_url=url, environment="test", cookie_secure=False, **overrides
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, with_web=False)
    with TestClient(app) as client:
        world = World(settings, app, client)
        seed(world)
        yield world
    app.state.ctx.close()  # no connection left behind to hold the test database


@dataclass
class SharedApp:
    """One app (and TestClient) per module on one SQLite file that each test gets back fresh: building the
    app costs more than a test, so only the data is renewed."""

    settings: Settings
    app: FastAPI
    client: TestClient
    database: Path
    template: Path

    def fresh_world(self) -> World:
        ctx: ServerContext = self.app.state.ctx
        tasks = self.app.state.ctx.tasks
        while any(not f.done() for f in tasks.pending):  # background work of the last test must not
            tasks.drain()  # write into the database about to be replaced
        ctx.engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.database)
        assert self.settings.storage_dir is not None
        shutil.rmtree(self.settings.storage_dir, ignore_errors=True)
        self.settings.storage_dir.mkdir(parents=True)
        if "store" in ctx.__dict__:
            del ctx.__dict__["store"]  # the local store makes its root when built
        world = World(self.settings, self.app, self.client)
        seed(world)
        return world


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[SharedApp]:
    root = tmp_path_factory.mktemp("cases-site")
    url = sqlite_templates.fresh(root / "db")
    assert sqlite_templates.template is not None
    settings = Settings(data_dir=root / "server", database_url=url, environment="test", cookie_secure=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, with_web=False)
    with TestClient(app) as client:
        yield SharedApp(settings, app, client, Path(url.removeprefix("sqlite:///")), sqlite_templates.template)


@pytest.fixture
def world(shared_app: SharedApp) -> World:
    """The site on SQLite, fresh for each test (the fast default for most tests)."""
    return shared_app.fresh_world()


@pytest.fixture
def world_any_db(tmp_path: Path, database_url: str) -> Iterator[World]:
    """The site once on SQLite and once on PostgreSQL."""
    yield from make_world(tmp_path, database_url)
