"""Daily work in a real headless Chromium, each job done by the role that does it: a failed dock seen on
the station, fleet and officer pages; the officer's home (docks file by file, the task recorded in
place, devices due back); the work counted on each role's home page; keyboard and navigation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from evidence_server.transfers.models import TransferFile
from tests.web.conftest import PASSWORD, LiveServer, add_recording, api_login, enrol_station, heartbeat, open_transfer
from tests.web.test_browser import fresh

pytestmark = pytest.mark.browser

By: Any = None
WebDriverWait: Any = None
Keys: Any = None
OFFICER = ("102345", "张三")


@pytest.fixture(scope="module", autouse=True)
def _selenium(browser: Any) -> None:
    global By, WebDriverWait, Keys
    from selenium.webdriver.common.by import By as by
    from selenium.webdriver.common.keys import Keys as keys
    from selenium.webdriver.support.ui import WebDriverWait as wait

    By, WebDriverWait, Keys = by, wait, keys


def sign_in(browser: Any, server: LiveServer, username: str) -> None:
    browser.get(f"{server.url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 5).until(lambda d: "/login" not in d.current_url)


@dataclass
class Floor:
    """A station of unit U01 with one failed port and one finished dock of officer1."""

    station_id: int
    token: str
    transfer_id: str


def post_port(api: httpx.Client, token: str, **body: Any) -> None:
    r = api.post("/api/v1/stations/me/ports", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def floor(live_server: LiveServer) -> Iterator[Floor]:
    site = live_server.site
    with live_server.client() as api:
        admin = api_login(api, "admin")
        station_id, token = enrol_station(api, admin, "采集站-二号", site.unit_ids["U01"])
        heartbeat(api, token, spool_bytes=0, free_bytes=500 * 1024**3, agent_version="0.1.0")
        transfer_id = open_transfer(api, token, "DSJ-OFF-0001", officer=OFFICER, files=2, size=1000)
        # one file verified, one still on its way
        rec = add_recording(
            site,
            transfer_id=transfer_id,
            station_id=station_id,
            unit="U01",
            serial="DSJ-OFF-0001",
            officer=OFFICER,
            name="DSJ-OFF-0001_20261120_000000.MP4",
            original_path="DCIM/20261120/DSJ-OFF-0001_20261120_000000.MP4",
        )
        with site.session() as s:
            s.add(
                TransferFile(
                    transfer_id=transfer_id, recording_id=rec, path="DCIM/20261120/DSJ-OFF-0001_20261120_000000.MP4"
                )
            )
            s.commit()
        post_port(
            api,
            token,
            port="ZFY_DSJ0002",
            state="failed",
            reason="the recorder's serial could not be read: no serial given and none in file names",
            advice="redock",
        )
        yield Floor(station_id, token, transfer_id)


def wait_text(browser: Any, element_id: str, text: str, timeout: float = 8) -> str:
    WebDriverWait(browser, timeout).until(lambda d: text in d.find_element(By.ID, element_id).text)
    return str(browser.find_element(By.ID, element_id).text)


def test_a_failed_dock_shows_on_the_station_page_with_reason_and_advice(
    browser: Any, live_server: LiveServer, floor: Floor
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/stations")
    port = browser.find_element(By.CSS_SELECTOR, f"#station-{floor.station_id} .port-failed")
    assert "ZFY_DSJ0002" in port.text and "接入失败" in port.text
    assert "serial could not be read" in port.text
    assert "拔下记录仪，重新接入" in port.text  # what to do


def test_the_fleet_page_no_longer_says_all_is_well_when_a_dock_failed(
    browser: Any, live_server: LiveServer, floor: Floor
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/fleet")
    assert not browser.find_elements(By.ID, "fleet-ok")
    failed = browser.find_element(By.ID, "fleet-failed-docks")
    assert "采集站-二号" in failed.text and "ZFY_DSJ0002" in failed.text
    row = browser.find_element(By.ID, f"fleet-station-{floor.station_id}")
    assert "接入失败" in row.text


def test_a_failed_dock_at_another_unit_is_not_shown(browser: Any, live_server: LiveServer, floor: Floor) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin_b")
    browser.get(f"{live_server.url}/fleet")
    assert "ZFY_DSJ0002" not in browser.find_element(By.TAG_NAME, "main").text


def test_the_officer_follows_their_dock_file_by_file_and_records_its_task(
    browser: Any, live_server: LiveServer, floor: Floor
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "officer1")
    assert browser.current_url == f"{live_server.url}/"
    # the failed port of their unit's station, with what to do
    live = browser.find_element(By.ID, "live")
    assert "ZFY_DSJ0002" in live.text and "拔下记录仪" in live.text
    dock = browser.find_element(By.ID, f"dock-{floor.transfer_id}")
    states = [li.get_dom_attribute("data-state") for li in dock.find_elements(By.CSS_SELECTOR, "li.file")]
    assert sorted(states) == ["verified", "waiting"]
    # the station reports the failure over: the page follows without a reload
    with live_server.client() as api:
        post_port(api, floor.token, port="ZFY_DSJ0002", state="empty")
    WebDriverWait(browser, 8).until(lambda d: "ZFY_DSJ0002" not in d.find_element(By.ID, "live").text)
    # the dock is missing its enforcement matter and case: record it right here
    counts = browser.find_element(By.ID, "counts").text
    assert "1 次接入待补登事项/案件" in counts.replace("\n", " ")
    form = browser.find_element(By.ID, f"task-{floor.transfer_id}")
    form.find_element(By.NAME, "enforcement_matter").send_keys("食品安全日常检查")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 5).until(lambda d: d.find_elements(By.ID, "done"))
    with live_server.site.session() as s:
        from evidence_server.transfers.models import Transfer

        assert s.get(Transfer, floor.transfer_id).enforcement_matter == "食品安全日常检查"  # type: ignore[union-attr]


def test_another_officer_cannot_record_the_task_of_a_dock_not_theirs(live_server: LiveServer, floor: Floor) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        client.post("/api/v1/auth/login", json={"username": "officer2", "password": PASSWORD})
        page = client.get("/")
        token = client.get("/api/v1/auth/csrf").json()["token"]  # officer2's own, valid session token
        r = client.post(
            f"/me/transfers/{floor.transfer_id}/task",
            data={"enforcement_matter": "冒名", "csrf_token": token},
            follow_redirects=False,
        )
    assert page.status_code == 200
    assert r.status_code == 404


def test_the_officer_sees_the_devices_they_must_bring_back(browser: Any, live_server: LiveServer) -> None:
    site = live_server.site
    with live_server.client() as api:
        admin_token = api_login(api, "devadmin")
        auth = {"Authorization": f"Bearer {admin_token}"}
        registered = (datetime.now(UTC) - timedelta(hours=10)).isoformat()
        device = {"serial": "DSJ-DUE-0001", "family": "mass_storage", "occurred_at": registered}
        r = api.post("/api/v1/devices", json=device, headers=auth)
        assert r.status_code == 201, r.text
        with site.session() as s:
            from evidence_server.accounts.models import User

            officer_id = s.query(User).filter_by(username="officer1").one().id
        r = api.post(
            "/api/v1/ledger/checkouts",
            json={
                "serial": "DSJ-DUE-0001",
                "officer_id": officer_id,
                "enforcement_matter": "夜间巡查",
                "expected_return_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "occurred_at": (datetime.now(UTC) - timedelta(hours=9)).isoformat(),
                "readings": {"battery_percent": 95, "storage_free_bytes": 20 * 1024**3, "clock_offset_s": 1.0},
            },
            headers=auth,
        )
        assert r.status_code == 201, r.text
    fresh(browser, live_server)
    sign_in(browser, live_server, "officer1")
    checkouts = browser.find_element(By.ID, "checkouts").text
    assert "DSJ-DUE-0001" in checkouts and "已逾期" in checkouts and "夜间巡查" in checkouts
    overdue = browser.find_element(By.CSS_SELECTOR, "#counts li.alarm").text.replace("\n", " ")
    assert overdue.startswith("1 ")
    # the device administrator's home counts it as overdue too
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    counts = {
        li.get_dom_attribute("data-key"): li.find_element(By.CLASS_NAME, "count-n").text
        for li in browser.find_elements(By.CSS_SELECTOR, "#counts li")
    }
    assert counts["home.overdue_devices"] == "1"


@pytest.mark.parametrize(
    ("username", "keys"),
    [
        (
            "devadmin",
            {"home.overdue_devices", "home.failed_docks", "home.stations_offline", "home.devices_unconfirmed"},
        ),
        ("legal", {"home.flags_to_review", "home.flags_mine"}),
        ("handler", {"home.recent_cases", "home.without_case"}),
        ("auditor", {"home.flags_to_review"}),
    ],
)
def test_each_role_lands_on_a_home_page_of_its_work(
    browser: Any, live_server: LiveServer, floor: Floor, username: str, keys: set[str]
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, username)
    assert browser.current_url == f"{live_server.url}/"
    found = {li.get_dom_attribute("data-key") for li in browser.find_elements(By.CSS_SELECTOR, "#counts li")}
    assert found == keys
    if username == "auditor":
        assert browser.find_element(By.ID, "home-checkpoint").text
        assert browser.find_element(By.ID, "home-verification").text


def test_one_navigation_tab_is_current_on_the_compliance_figures(browser: Any, live_server: LiveServer) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "legal")
    browser.get(f"{live_server.url}/compliance/dashboard")
    current = browser.find_elements(By.CSS_SELECTOR, "nav.mainnav a[aria-current=page]")
    assert [a.get_dom_attribute("href") for a in current] == ["/compliance/dashboard"]


@pytest.mark.parametrize("username", ["admin", "devadmin", "legal"])
def test_the_english_navigation_stays_on_one_row_at_1366_px(
    browser: Any, live_server: LiveServer, username: str
) -> None:
    fresh(browser, live_server)
    browser.set_window_size(1366, 900)
    try:
        browser.get(f"{live_server.url}/lang/en?next=/login")
        sign_in(browser, live_server, username)
        tops = {a.rect["y"] for a in browser.find_elements(By.CSS_SELECTOR, "nav.mainnav a")}
        assert len(tops) == 1
        nav = browser.find_element(By.CSS_SELECTOR, "nav.mainnav ul")
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth + 1", nav)
    finally:
        browser.set_window_size(1400, 1000)
        browser.get(f"{live_server.url}/lang/zh?next=/login")


def test_the_keyboard_reaches_the_skip_link_first_and_focus_is_visible(browser: Any, live_server: LiveServer) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/stations")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_dom_attribute("class") == "skip-link"
    assert focused.is_displayed() and focused.rect["y"] >= 0
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    focused.send_keys(Keys.ENTER)
    time.sleep(0.2)
    assert browser.current_url.endswith("#main")
    assert browser.switch_to.active_element.get_dom_attribute("id") == "main"


def test_officers_are_shown_by_name_and_number_even_when_the_recorder_gave_only_the_number(
    browser: Any, live_server: LiveServer, floor: Floor
) -> None:
    add_recording(
        live_server.site,
        transfer_id=floor.transfer_id,
        station_id=floor.station_id,
        unit="U01",
        serial="DSJ-NONAME-01",
        officer=("102346", "ignored"),
        name="DSJ-NONAME-01_0001.MP4",
        officer_name=None,
    )
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/recordings?device_serial=DSJ-NONAME-01")
    assert "102346 李四" in browser.find_element(By.TAG_NAME, "main").text
