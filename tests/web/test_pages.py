"""The pages over HTTP (no browser): guards, CSRF, redirects, scoping, audit and CSP-safe markup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from evidence_server.audit.models import AuditEvent
from evidence_server.recordings.models import Recording
from tests.web.conftest import (
    PASSWORD,
    Site,
    add_recording,
    api_login,
    enrol_station,
    heartbeat,
    open_transfer,
    put_progress,
)
from web_ui.csrf import CSRF_COOKIE

HTML = {"Accept": "text/html,application/xhtml+xml"}


@dataclass
class World:
    station_a: int
    station_b: int
    transfer_a: str
    own_recording: int
    other_officers_recording: int


@pytest.fixture(scope="module")
def world(site: Site, app: FastAPI) -> World:
    api = TestClient(app)
    admin = api_login(api, "admin")
    station_a, token_a = enrol_station(api, admin, "STATION-A1", site.unit_ids["U01"])
    station_b, token_b = enrol_station(api, admin, "STATION-B1", site.unit_ids["U02"])
    heartbeat(api, token_a, spool_bytes=5 * 1024**3, free_bytes=700 * 1024**3, agent_version="0.1.0")
    transfer_a = open_transfer(api, token_a, "DSJ-A-0001", officer=("102345", "张三"))
    put_progress(
        api,
        token_a,
        transfer_a,
        state="uploading",
        files_done=1,
        files_total=3,
        bytes_done=1_000_000,
        bytes_total=3_000_000,
        message="正在上传第 2 个文件",
    )
    transfer_b = open_transfer(api, token_b, "DSJ-B-0001")
    own = add_recording(
        site,
        transfer_id=transfer_a,
        station_id=station_a,
        unit="U01",
        serial="DSJ-A-0001",
        officer=("102345", "张三"),
        name="DSJ-A-0001_20261120_160000.MP4",
        verified_at=datetime(2026, 11, 20, 16, 30, 5, tzinfo=UTC),
    )
    other = add_recording(
        site,
        transfer_id=transfer_a,
        station_id=station_a,
        unit="U01",
        serial="DSJ-A-0001",
        officer=("102346", "李四"),
        name="DSJ-A-0001_20261120_170000.MP4",
    )
    add_recording(
        site,
        transfer_id=transfer_b,
        station_id=station_b,
        unit="U02",
        serial="DSJ-B-0001",
        officer=None,
        name="DSJ-B-0001_20261120_090000.MP4",
    )
    return World(station_a, station_b, transfer_a, own, other)


def browser_like(app: FastAPI) -> TestClient:
    return TestClient(app, headers=HTML, follow_redirects=False)


def login(app: FastAPI, username: str) -> TestClient:
    client = browser_like(app)
    assert client.get("/login").status_code == 200
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": client.cookies[CSRF_COOKIE], "next": ""},
    )
    assert r.status_code == 303, r.text
    return client


def audit_events(site: Site, action: str) -> list[AuditEvent]:
    with site.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.mark.parametrize("path", ["/", "/stations", "/stations/live", "/recordings", "/recordings/1"])
def test_pages_send_strangers_to_the_login_page(app: FastAPI, path: str) -> None:
    r = browser_like(app).get(path)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={path}"


def test_login_without_the_csrf_token_is_refused_and_audited(app: FastAPI, site: Site) -> None:
    client = browser_like(app)
    r = client.post("/login", data={"username": "devadmin", "password": PASSWORD, "csrf_token": "x" * 40})
    assert r.status_code == 403
    assert "表单已过期" in r.text
    assert "custodia_session" not in r.cookies
    assert audit_events(site, "web.csrf_rejected")


def test_a_failed_login_shows_an_error_and_is_audited(app: FastAPI, site: Site) -> None:
    client = browser_like(app)
    client.get("/login")
    r = client.post(
        "/login", data={"username": "devadmin", "password": "wrong password", "csrf_token": client.cookies[CSRF_COOKIE]}
    )
    assert r.status_code == 200
    assert "用户名或密码错误" in r.text
    assert audit_events(site, "auth.login_failed")[-1].details == {"username": "devadmin", "via": "web"}


@pytest.mark.parametrize(
    ("next_path", "landing"),
    [
        ("/stations", "/stations"),
        ("/recordings?device_serial=DSJ-A-0001", "/recordings?device_serial=DSJ-A-0001"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_login_goes_to_next_only_when_it_is_local(app: FastAPI, next_path: str, landing: str) -> None:
    client = browser_like(app)
    client.get("/login", params={"next": next_path})
    r = client.post(
        "/login",
        data={
            "username": "devadmin",
            "password": PASSWORD,
            "csrf_token": client.cookies[CSRF_COOKIE],
            "next": next_path,
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == landing


def test_the_login_page_sends_a_signed_in_user_on(app: FastAPI) -> None:
    client = login(app, "officer1")
    page = "/recordings?page=1"
    assert client.get("/login", params={"next": page}).headers["location"] == page
    assert client.get("/login", params={"next": "//evil.example"}).headers["location"] == "/"


def test_logout_needs_the_csrf_token_then_ends_the_session(app: FastAPI, site: Site) -> None:
    client = login(app, "devadmin")
    client.get("/stations")
    assert client.post("/logout", data={"csrf_token": "forged" * 8}).status_code == 403
    assert client.get("/stations").status_code == 200  # still logged in
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/stations").text)
    assert token is not None and CSRF_COOKIE not in client.cookies  # a signed-in page's token is its session's
    r = client.post("/logout", data={"csrf_token": token.group(1)})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert audit_events(site, "auth.logout")[-1].details == {"via": "web"}
    client.cookies.clear()
    assert client.get("/stations").status_code == 303


@pytest.mark.parametrize(
    ("url", "status", "location"),
    [
        ("/lang/en?next=/recordings", 303, "/recordings"),
        ("/lang/en?next=//evil.example", 303, "/"),
        ("/lang/fr?next=/recordings", 404, None),
    ],
)
def test_language_switch(app: FastAPI, url: str, status: int, location: str | None) -> None:
    r = browser_like(app).get(url)
    assert r.status_code == status
    if location:
        assert r.headers["location"] == location
        assert r.cookies["lang"] == "en"


def test_english_pages_when_the_cookie_says_so(app: FastAPI, world: World) -> None:
    client = login(app, "devadmin")
    client.cookies.set("lang", "en")
    page = client.get("/stations").text
    assert '<html lang="en">' in page
    assert "Collection stations" in page
    client.cookies.set("lang", "xx")
    assert '<html lang="zh-CN">' in client.get("/stations").text


@pytest.mark.parametrize(
    ("username", "sees", "hidden"),
    [
        ("devadmin", ["STATION-A1"], ["STATION-B1"]),
        ("devadmin_b", ["STATION-B1"], ["STATION-A1"]),
        ("legal", ["STATION-A1", "STATION-B1"], []),
    ],
)
def test_station_page_is_scoped_to_the_unit(
    app: FastAPI, world: World, username: str, sees: list[str], hidden: list[str]
) -> None:
    live = login(app, username).get("/stations/live").text
    assert all(name in live for name in sees)
    assert not any(name in live for name in hidden)


def test_station_page_shows_heartbeat_and_docking_progress(app: FastAPI, world: World) -> None:
    page = login(app, "devadmin").get("/stations").text
    row = re.search(rf'<tr id="transfer-{world.transfer_a}".*?</tr>', page, re.S)
    assert row is not None
    assert "DSJ-A-0001" in row[0] and "102345 张三" in row[0]
    assert '<progress max="3000000" value="1000000">' in row[0]
    assert "1 / 3" in row[0] and "上传中" in row[0] and "正在上传第 2 个文件" in row[0]
    assert "5.0 GiB" in page and "700.0 GiB" in page and "0.1.0" in page


@pytest.mark.parametrize(("username", "status"), [("officer1", 403), ("handler", 403), ("auditor", 200)])
def test_station_page_roles(app: FastAPI, username: str, status: int) -> None:
    assert login(app, username).get("/stations").status_code == status


def test_officers_see_only_their_own_recordings(app: FastAPI, world: World) -> None:
    client = login(app, "officer1")
    page = client.get("/recordings").text
    assert "我的音像记录" in page
    assert f'id="recording-{world.own_recording}"' in page
    assert f'id="recording-{world.other_officers_recording}"' not in page
    detail = client.get(f"/recordings/{world.other_officers_recording}")
    assert detail.status_code == 404
    assert "无权查看" in detail.text


def test_recordings_filters(app: FastAPI, world: World) -> None:
    client = login(app, "legal")
    assert "共 3 条记录" in client.get("/recordings").text
    assert "共 2 条记录" in client.get("/recordings", params={"device_serial": "DSJ-A-0001"}).text
    assert "共 1 条记录" in client.get("/recordings", params={"officer_no": "102346"}).text
    assert "共 0 条记录" in client.get("/recordings", params={"device_serial": "NOPE"}).text


def test_recording_detail_shows_facts_plays_the_content_and_is_audited(app: FastAPI, site: Site, world: World) -> None:
    client = login(app, "officer1")
    page = client.get(f"/recordings/{world.own_recording}").text
    with site.session() as s:
        rec = s.get_one(Recording, world.own_recording)
    assert f'<video controls preload="metadata" src="/api/v1/recordings/{rec.id}/content"' in page
    assert (
        rec.blake3 in page
        and rec.sha256 in page
        and rec.sm3
        and f'<code class="hash-full" id="sm3">{rec.sm3}</code>' in page
    )
    assert "2026-11-21 00:30:05 UTC+08:00" in page  # verified_at 16:30:05Z in Asia/Shanghai
    assert "1920×1080" in page and "0:30:05" in page
    event = audit_events(site, "recording.view")[-1]
    assert (event.object_id, event.actor_name) == (str(rec.id), "officer1")
    # the cookie alone authenticates the player's request
    content = client.get(f"/api/v1/recordings/{rec.id}/content", headers={"Range": "bytes=0-3"})
    assert content.status_code == 206


def test_markup_has_no_inline_script_or_style(app: FastAPI, world: World) -> None:
    """The CSP forbids them; a browser would silently drop them."""
    client = login(app, "legal")
    pages = [client.get(p).text for p in ("/stations", "/recordings", f"/recordings/{world.own_recording}")]
    pages.append(browser_like(app).get("/login").text)
    for page in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page, re.I)
        assert "http://" not in page and "https://" not in page  # no CDN: everything is local


def test_static_assets_are_served_locally(app: FastAPI) -> None:
    client = browser_like(app)
    for asset in ("/static/custodia.css", "/static/custodia.js", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200


def test_a_damaged_copy_is_shown_on_the_recording_page_and_not_played(app: FastAPI, site: Site, world: World) -> None:
    """Issue 14: a read that finds the stored copy damaged refuses it, and the page says so at once."""
    with site.session() as s:
        rec = s.get_one(Recording, world.own_recording)
        path = site.settings.storage_dir / rec.storage_key  # type: ignore[operator]
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    client = login(app, "officer1")
    try:
        assert client.get(f"/api/v1/recordings/{rec.id}/content").status_code == 409
        page = client.get(f"/recordings/{rec.id}").text
        assert 'id="copy-damaged"' in page and "存储副本已损坏" in page and "<video" not in page
    finally:  # the module's other tests share this recording
        path.write_bytes(original)
        with site.session() as s:
            s.get_one(Recording, rec.id).fixity_state = "ok"
            s.commit()


def test_a_list_too_long_to_count_says_more_than_n_and_still_pages_on(
    app: FastAPI, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list counts no further than COUNT_CAP past its page (issue 18): it then says "more than N" and offers
    the next page; the last page's count is exact. (Legal affairs see 3 recordings here; one a page.)"""
    from evidence_server import db
    from web_ui.pages import recordings as recordings_page

    monkeypatch.setattr(recordings_page, "PAGE_SIZE", 1)
    monkeypatch.setattr(db, "COUNT_CAP", 1)
    client = login(app, "legal")
    first = client.get("/recordings").text
    assert "超过 2 条记录" in first and 'rel="next"' in first
    last = client.get("/recordings", params={"page": 3}).text
    assert "共 3 条记录" in last and 'rel="next"' not in last


def test_the_case_handlers_home_says_n_plus_when_it_stopped_counting(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_server.home import service as home

    client = login(app, "handler")
    counted = re.search(
        r'data-key="home.without_case">\s*<a [^>]*><span class="count-n">([^<]*)</span>', client.get("/").text
    )
    assert counted is not None and counted.group(1).isdigit()
    n = int(counted.group(1))
    assert n >= 1, "the site has a recording without a case for the handler's unit"
    monkeypatch.setattr(home, "WITHOUT_CASE_CAP", n - 1)
    again = re.search(
        r'data-key="home.without_case">\s*<a [^>]*><span class="count-n">([^<]*)</span>', client.get("/").text
    )
    assert again is not None and again.group(1) == f"{n - 1}+"
