"""Administration in a real headless Chromium, and the same actions over HTTP: units, users and roles
(the generated password shown once), stations (code, credentials replaced, revoked); device
administrators only within their unit; every action in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evidence_server.audit.models import AuditEvent
from tests.web.conftest import PASSWORD, LiveServer, api_login, click_and_wait
from tests.web.test_browser import fresh

pytestmark = pytest.mark.browser

By: Any = None
WebDriverWait: Any = None
Select: Any = None


@pytest.fixture(scope="module", autouse=True)
def _selenium(browser: Any) -> None:
    global By, WebDriverWait, Select
    from selenium.webdriver.common.by import By as by
    from selenium.webdriver.support.ui import Select as select
    from selenium.webdriver.support.ui import WebDriverWait as wait

    By, WebDriverWait, Select = by, wait, select


def sign_in(browser: Any, server: LiveServer, username: str, password: str = PASSWORD) -> None:
    browser.get(f"{server.url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    click_and_wait(browser, browser.find_element(By.ID, "login-submit"))
    WebDriverWait(browser, 5).until(lambda d: "/login" not in d.current_url)


def actions(server: LiveServer) -> list[str]:
    with server.site.session() as s:
        return [a for (a,) in s.query(AuditEvent.action).order_by(AuditEvent.seq)]


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def test_a_sysadmin_creates_a_unit_and_a_user_who_logs_in_with_the_password_shown_once(
    browser: Any, live_server: LiveServer
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "admin")
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "系统管理"))
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "单位"))
    browser.find_element(By.ID, "n-code").send_keys("U03")
    browser.find_element(By.ID, "n-name").send_keys("第三市场监管所")
    click_and_wait(browser, browser.find_element(By.ID, "unit-submit"))
    assert "第三市场监管所" in browser.find_element(By.ID, "unit-U03").text

    browser.get(f"{live_server.url}/admin/users")
    browser.find_element(By.ID, "u-username").send_keys("officer3")
    browser.find_element(By.ID, "u-display").send_keys("王五")
    Select(browser.find_element(By.ID, "u-role")).select_by_value("officer")
    browser.find_element(By.ID, "u-officer").send_keys("102399")
    Select(browser.find_element(By.ID, "u-unit")).select_by_visible_text("第三市场监管所")
    click_and_wait(browser, browser.find_element(By.ID, "user-submit"))
    password = browser.find_element(By.ID, "secret-value").text
    assert len(password) >= 16
    row = browser.find_element(By.ID, "user-officer3").text
    assert "王五" in row and "102399" in row and "第三市场监管所" in row
    browser.get(f"{live_server.url}/admin/users")  # shown once: not on the list page
    assert not browser.find_elements(By.ID, "secret-value")

    fresh(browser, live_server)
    sign_in(browser, live_server, "officer3", password)
    assert "王五" in browser.find_element(By.ID, "who").text
    assert {"unit.created", "user.created"} <= set(actions(live_server))


def test_a_disabled_user_is_logged_out_at_once_and_a_reset_password_works(
    browser: Any, live_server: LiveServer, api: httpx.Client
) -> None:
    officer_token = api_login(api, "officer2")
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/admin/users")
    click_and_wait(browser, browser.find_element(By.ID, "disable-officer2"))
    WebDriverWait(browser, 5).until(lambda d: d.find_elements(By.ID, "done"))
    assert browser.find_element(By.ID, "user-officer2").get_dom_attribute("data-active") == "no"
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {officer_token}"}).status_code == 401
    assert api.post("/api/v1/auth/login", json={"username": "officer2", "password": PASSWORD}).status_code == 401

    click_and_wait(browser, browser.find_element(By.ID, "enable-officer2"))
    click_and_wait(browser, browser.find_element(By.ID, "reset-officer2"))
    new_password = browser.find_element(By.ID, "secret-value").text
    assert api.post("/api/v1/auth/login", json={"username": "officer2", "password": PASSWORD}).status_code == 401
    assert api.post("/api/v1/auth/login", json={"username": "officer2", "password": new_password}).status_code == 200
    assert {"user.disabled", "user.enabled", "user.password_reset"} <= set(actions(live_server))


def test_a_device_admin_sees_and_manages_only_the_officers_of_their_unit(
    browser: Any, live_server: LiveServer, api: httpx.Client
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/admin/users")
    listed = {tr.get_dom_attribute("id") for tr in browser.find_elements(By.CSS_SELECTOR, "#users tbody tr")}
    assert "user-officer1" in listed and "user-auditor" not in listed  # the auditor is of unit U02
    assert [o.get_dom_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#u-role option")] == [
        "officer"
    ]
    assert not browser.find_elements(By.ID, "reset-admin")  # a sysadmin of the same unit: not theirs
    assert not browser.find_elements(By.ID, "unit-form")

    token = api_login(api, "devadmin")
    auth = {"Authorization": f"Bearer {token}"}
    site = live_server.site
    other_unit = site.unit_ids["U02"]
    with site.session() as s:
        from evidence_server.accounts.models import User

        ids = {u.username: u.id for u in s.query(User)}
    # over HTTP the same rules hold: no sysadmin made, nobody of another unit touched, no unit created
    body = {"username": "sneaky", "role": "sysadmin", "unit_id": site.unit_ids["U01"]}
    assert api.post("/api/v1/admin/users", json=body, headers=auth).status_code == 403
    body = {"username": "elsewhere", "role": "officer", "unit_id": other_unit, "officer_no": "9"}
    elsewhere = api.post("/api/v1/admin/users", json=body, headers=auth)  # as for a unit that does not exist
    assert (elsewhere.status_code, elsewhere.json()["detail"]) == (422, "no such unit")
    assert api.post(f"/api/v1/admin/users/{ids['devadmin_b']}/password", headers=auth).status_code == 404
    assert api.post(f"/api/v1/admin/users/{ids['admin']}/password", headers=auth).status_code == 403
    r = api.patch(f"/api/v1/admin/users/{ids['officer1']}", json={"role": "sysadmin"}, headers=auth)
    assert r.status_code == 403
    assert api.post("/api/v1/admin/units", json={"code": "X", "name": "X"}, headers=auth).status_code == 403
    # officers are not administrators at all
    officer = {"Authorization": f"Bearer {api_login(api, 'officer1')}"}
    assert api.get("/api/v1/admin/users", headers=officer).status_code == 403


def test_units_and_users_over_http(api: httpx.Client, live_server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {api_login(api, 'admin')}"}
    r = api.post("/api/v1/admin/units", json={"code": "U-HTTP", "name": "接口单位"}, headers=auth)
    assert r.status_code == 201, r.text
    unit_id = r.json()["id"]
    assert api.post("/api/v1/admin/units", json={"code": "U-HTTP", "name": "again"}, headers=auth).status_code == 409
    r = api.post(
        "/api/v1/admin/users",
        json={"username": "handler-http", "role": "case_handler", "unit_id": unit_id, "display_name": "<b>x</b>"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert api.post("/api/v1/auth/login", json={"username": "handler-http", "password": made["password"]}).is_success
    r = api.patch(f"/api/v1/admin/users/{made['id']}", json={"role": "auditor", "active": False}, headers=auth)
    assert r.json()["role"] == "auditor" and r.json()["active"] is False
    me = api.get("/api/v1/auth/me", headers=auth).json()
    assert api.patch(f"/api/v1/admin/users/{me['id']}", json={"active": False}, headers=auth).status_code == 403


def test_a_station_is_created_enrolled_rotated_and_revoked_from_the_browser(
    browser: Any, live_server: LiveServer, api: httpx.Client
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/admin/stations")
    browser.find_element(By.ID, "s-name").send_keys("采集站-管理")
    click_and_wait(browser, browser.find_element(By.ID, "station-submit"))
    code = browser.find_element(By.ID, "secret-value").text
    r = api.post("/api/v1/stations/enrol", json={"code": code, "hostname": "ws-admin"})
    assert r.status_code == 201, r.text
    station_id, token = r.json()["station_id"], r.json()["token"]
    station = {"Authorization": f"Bearer {token}"}
    assert api.post("/api/v1/stations/me/heartbeat", json={}, headers=station).status_code == 204

    browser.get(f"{live_server.url}/admin/stations")
    click_and_wait(browser, browser.find_element(By.ID, f"rotate-{station_id}"))
    new_code = browser.find_element(By.ID, "secret-value").text
    assert api.post("/api/v1/stations/me/heartbeat", json={}, headers=station).status_code == 401
    r = api.post("/api/v1/stations/enrol", json={"code": new_code, "hostname": "ws-admin"})
    assert r.status_code == 201
    station = {"Authorization": f"Bearer {r.json()['token']}"}

    browser.get(f"{live_server.url}/admin/stations")
    click_and_wait(browser, browser.find_element(By.ID, f"revoke-{station_id}"))
    WebDriverWait(browser, 5).until(lambda d: d.find_elements(By.ID, "done"))
    assert "已吊销" in browser.find_element(By.ID, f"admin-station-{station_id}").text
    assert api.post("/api/v1/stations/me/heartbeat", json={}, headers=station).status_code == 401
    assert {"station.created", "station.credentials_replaced", "station.revoked"} <= set(actions(live_server))


def test_a_device_is_registered_with_a_driver_family_from_the_drivers(browser: Any, live_server: LiveServer) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/admin/users")
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "设备登记"))
    families = [o.get_dom_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#r-family option")]
    assert {"mass_storage", "folder", "e12", "dv16", "ambarella"} <= set(families)
    browser.find_element(By.ID, "r-serial").send_keys("DSJ-ADMIN-01")
    Select(browser.find_element(By.ID, "r-family")).select_by_value("dv16")
    click_and_wait(browser, browser.find_element(By.ID, "register-submit"))
    WebDriverWait(browser, 5).until(lambda d: "DSJ-ADMIN-01" in d.find_element(By.TAG_NAME, "main").text)
    assert "dv16" in browser.find_element(By.TAG_NAME, "main").text
