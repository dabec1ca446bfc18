"""Fixtures for the pages: a migrated, seeded site; a live uvicorn server in a thread; headless Chromium.

The live server and the browser are module-scoped: one server and one browser per test module.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from evidence_server import dbadmin
from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role
from evidence_server.app import create_app
from evidence_server.audit.service import record
from evidence_server.config import Settings
from evidence_server.db import make_engine, make_sessionmaker
from evidence_server.recordings.models import Recording
from evidence_server.storage import make_store
from tests.support import services

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Person:
    username: str
    role: Role
    unit: str
    officer_no: str | None = None
    display_name: str | None = None


PEOPLE = (
    Person("admin", Role.sysadmin, "U01", display_name="系统管理员"),
    Person("devadmin", Role.device_admin, "U01", display_name="王管理"),
    Person("officer1", Role.officer, "U01", "102345", "张三"),
    Person("officer2", Role.officer, "U01", "102346", "李四"),
    Person("handler", Role.case_handler, "U01", display_name="赵办案"),
    Person("auditor", Role.auditor, "U02", display_name="钱审计"),
    Person("legal", Role.legal_affairs, "U02", display_name="孙法规"),
    Person("devadmin_b", Role.device_admin, "U02", display_name="周管理"),
)
UNITS = {"U01": "第一市场监管所", "U02": "第二市场监管所"}


@dataclass
class Site:
    """A migrated database with two units and one user of each kind (all with PASSWORD)."""

    settings: Settings
    sessionmaker: sessionmaker[Session]
    unit_ids: dict[str, int] = field(default_factory=dict)

    def session(self) -> Session:
        return self.sessionmaker()


def make_site(data_dir: Path) -> Site:
    settings = Settings(data_dir=data_dir, cookie_secure=False, environment="test")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    dbadmin.upgrade(settings.database_url)
    site = Site(settings, make_sessionmaker(make_engine(settings.database_url)))
    with site.session() as s:
        units = {code: accounts.ensure_unit(s, code, name) for code, name in UNITS.items()}
        for p in PEOPLE:
            accounts.create_user(
                s,
                username=p.username,
                password=PASSWORD,
                role=p.role,
                unit=units[p.unit],
                display_name=p.display_name,
                officer_no=p.officer_no,
            )
        s.commit()
        site.unit_ids = {code: u.id for code, u in units.items()}
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def app(site: Site) -> FastAPI:
    return create_app(site.settings)


# --- talking to the server's API as a station would ----------------------------------------


def api_login(client: httpx.Client, username: str) -> str:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    r.raise_for_status()
    client.cookies.clear()  # keep API calls bearer-only: the page tests manage their own cookies
    return str(r.json()["token"])


def enrol_station(client: httpx.Client, admin_token: str, name: str, unit_id: int) -> tuple[int, str]:
    """Register and enrol a station; returns (station id, station token)."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    r = client.post("/api/v1/stations", json={"name": name, "unit_id": unit_id}, headers=auth)
    r.raise_for_status()
    code = r.json()["enrolment_code"]
    r = client.post("/api/v1/stations/enrol", json={"code": code, "hostname": f"{name}.lan"})
    r.raise_for_status()
    return int(r.json()["station_id"]), str(r.json()["token"])


def open_transfer(
    client: httpx.Client,
    station_token: str,
    serial: str,
    *,
    officer: tuple[str, str] | None = None,
    files: int = 3,
    size: int = 1_000_000,
) -> str:
    transfer_id = str(uuid.uuid4())
    index = [
        {"path": f"DCIM/20261120/{serial}_20261120_0{i}0000.MP4", "size": size, "mtime": "2026-11-20T02:00:00Z"}
        for i in range(files)
    ]
    body: dict[str, Any] = {
        "transfer_id": transfer_id,
        "docked_at": datetime.now(UTC).isoformat(),
        "device": {"serial": serial, "family": "mass_storage"},
        "index": index,
    }
    if officer:
        body["officer"] = {"number": officer[0], "name": officer[1]}
    r = client.post("/api/v1/transfers", json=body, headers={"Authorization": f"Bearer {station_token}"})
    r.raise_for_status()
    return transfer_id


def put_progress(client: httpx.Client, station_token: str, transfer_id: str, **progress: Any) -> None:
    r = client.put(
        f"/api/v1/transfers/{transfer_id}/progress", json=progress, headers={"Authorization": f"Bearer {station_token}"}
    )
    r.raise_for_status()


def heartbeat(client: httpx.Client, station_token: str, **data: Any) -> None:
    r = client.post("/api/v1/stations/me/heartbeat", json=data, headers={"Authorization": f"Bearer {station_token}"})
    r.raise_for_status()


def add_recording(
    site: Site,
    *,
    transfer_id: str,
    station_id: int,
    unit: str,
    serial: str,
    officer: tuple[str, str] | None,
    name: str,
    content: bytes | None = None,
    **facts: Any,
) -> int:
    """A verified recording as the upload receiver would leave it; ``content`` goes into the object store."""
    now = datetime.now(UTC)
    data = content if content is not None else uuid.uuid4().bytes
    b3, sha = blake3.blake3(data).hexdigest(), hashlib.sha256(data).hexdigest()
    staged = site.settings.data_dir / f"staged-{b3}"
    staged.write_bytes(data)
    key = make_store(site.settings).put_verified(staged, b3, sha, len(data))
    values: dict[str, Any] = dict(
        blake3=f"blake3:{b3}",
        sha256=f"sha256:{sha}",
        sm3="sm3:" + hashlib.new("sm3", data).hexdigest(),
        size=len(data),
        storage_key=key,
        unit_id=site.unit_ids[unit],
        station_id=station_id,
        transfer_id=transfer_id,
        device_serial=serial,
        officer_no=officer[0] if officer else None,
        officer_name=officer[1] if officer else None,
        original_path=f"DCIM/{name}",
        original_name=name,
        name_started_at=now - timedelta(hours=3),
        container_started_at=now - timedelta(hours=3, seconds=2),
        probe_state="done",
        duration_s=1805.4,
        codec="h264",
        width=1920,
        height=1080,
        frame_rate=30.0,
        container_format="mov,mp4,m4a,3gp,3g2,mj2",
        docked_at=now - timedelta(minutes=30),
        copied_at=now - timedelta(minutes=25),
        uploaded_at=now - timedelta(minutes=20),
        verified_at=now - timedelta(minutes=20),
    )
    values.update(facts)
    with site.session() as s:
        rec = Recording(**values)
        s.add(rec)
        s.flush()
        # as the upload receiver records it: the digests the log binds the recording to
        record(
            s,
            "recording.verified",
            object_type="recording",
            object_id=rec.id,
            details={"path": rec.original_path, "blake3": rec.blake3, "sha256": rec.sha256, "size": rec.size},
        )
        s.commit()
        return rec.id


# --- a live server in a thread ----------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    site: Site

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@pytest.fixture(scope="module")
def live_server(site: Site, app: FastAPI) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="live-server")
    thread.start()  # off the main thread uvicorn installs no signal handlers
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", site)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# --- headless Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        services.require_tool("chromium", "chromedriver")
    services.require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        "--lang=zh-CN",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def click_and_wait(browser: Any, element: Any, timeout: float = 15.0) -> None:
    """Click something that loads a new page, and wait until the old page is gone: reading the page right
    after a click can otherwise read the old one, or an element the new one just replaced."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    element.click()

    def gone(_: Any) -> bool:
        try:
            old.is_enabled()  # any call on an element of a page that is gone fails
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:  # newer Chromium: "Node … does not belong to the document"
            if "does not belong to the document" in str(exc) or "No node with given id" in str(exc):
                return True
            raise
        return False

    WebDriverWait(browser, timeout).until(gone)
