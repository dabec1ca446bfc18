"""The ledger pages in headless Chromium against a live server: register a device, check it out,
return it, see its timeline, download the ledger as XLSX and read it back."""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from evidence_server.app import create_app
from evidence_server.config import Settings
from evidence_server.db import make_engine, make_sessionmaker
from tests.ledger.conftest import PASSWORD, Site, seed
from tests.support import services
from tests.support.databases import SqliteTemplates

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[Site]:
    """One seeded SQLite site served by uvicorn in a thread, for the whole module."""
    root = tmp_path_factory.mktemp("ledger-site")
    url = sqlite_templates.fresh(root / "db")
    settings = Settings(data_dir=root / "server", database_url=url, environment="test", cookie_secure=False)
    engine = make_engine(url)
    site = Site(url, settings, make_sessionmaker(engine))
    seed(site)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.02)
    site.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield site
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        engine.dispose()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[Any]:
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        services.require_tool("chromium")
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
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def wait(browser: Any, until: Any, seconds: float = 5) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(until)


def sign_in(browser: Any, site: Site, username: str) -> None:
    browser.get(f"{site.url}/login")
    browser.delete_all_cookies()
    browser.get(f"{site.url}/login")
    browser.find_element(by().ID, "username").send_keys(username)
    browser.find_element(by().ID, "password").send_keys(PASSWORD)
    browser.find_element(by().ID, "login-submit").click()
    wait(browser, lambda d: "/login" not in d.current_url)


def fill(browser: Any, fields: dict[str, str]) -> None:
    for element_id, value in fields.items():
        element = browser.find_element(by().ID, element_id)
        element.clear()
        element.send_keys(value)


def test_check_out_return_and_download_the_ledger(browser: Any, live: Site, downloads: Path, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get_log("browser")
    sign_in(browser, live, "devadmin1")
    browser.get(f"{live.url}/devices")
    nav = [a.text for a in browser.find_elements(by().CSS_SELECTOR, "nav.mainnav a")]
    assert {"设备", "交接台账"} <= set(nav)
    assert "配备不足" in browser.find_element(by().ID, "units").text  # no recorder yet, two required

    fill(browser, {"r-serial": "DSJ-WEB-01", "r-model": "DSJ-V9"})
    browser.find_element(by().ID, "register-submit").click()
    wait(browser, lambda d: d.current_url.endswith("/devices/DSJ-WEB-01?done=register"))
    assert browser.find_element(by().ID, "status").text == "在库可用"

    browser.find_element(by().ID, "action-checkout").click()
    wait(browser, lambda d: d.current_url.endswith("/devices/DSJ-WEB-01/checkout"))
    assert browser.find_element(by().ID, "not-docked").is_displayed()
    Select(browser.find_element(by().ID, "officer")).select_by_visible_text("张三（102345）")
    fill(
        browser,
        {
            "matter": "餐饮服务食品安全检查",
            "case-number": "市监案〔2026〕30号",
            "battery": "35",
            "storage": "16",
            "clock": "2",
        },
    )
    browser.find_element(by().ID, "submit").click()  # the battery is too low: refused, the form is kept
    error = wait(browser, lambda d: d.find_elements(by().ID, "form-error"))[0]
    assert "使用前检查未通过" in error.text and "电量不足" in error.text
    assert browser.find_element(by().ID, "matter").get_attribute("value") == "餐饮服务食品安全检查"
    fill(browser, {"battery": "90"})
    browser.find_element(by().ID, "submit").click()
    wait(browser, lambda d: d.current_url.endswith("/devices/DSJ-WEB-01?done=checkout"))
    assert browser.find_element(by().ID, "status").text == "已领用"
    assert "张三（102345）" in browser.find_element(by().ID, "holder").text
    timeline = browser.find_element(by().ID, "timeline").text
    assert "领用" in timeline and "餐饮服务食品安全检查" in timeline and "电量 90%" in timeline
    browser.save_screenshot(str(tmp_path / "device-out.png"))

    browser.find_element(by().ID, "action-return").click()
    wait(browser, lambda d: d.current_url.endswith("/devices/DSJ-WEB-01/return"))
    Select(browser.find_element(by().ID, "condition")).select_by_value("good")
    fill(browser, {"description": "电量充足，外观完好"})
    browser.find_element(by().ID, "submit").click()
    wait(browser, lambda d: d.current_url.endswith("/devices/DSJ-WEB-01?done=return"))
    assert browser.find_element(by().ID, "status").text == "在库可用"
    assert "接收人：王管理" in browser.find_element(by().ID, "timeline").text

    browser.get(f"{live.url}/ledger")
    table = browser.find_element(by().ID, "ledger").text
    assert "DSJ-WEB-01" in table and "归还" in table and "领用" in table
    browser.save_screenshot(str(tmp_path / "ledger.png"))
    browser.find_element(by().ID, "export-xlsx").click()
    files = wait(  # written: Chromium makes the file empty under its final name first, beside a .crdownload
        browser,
        lambda d: (
            not list(downloads.glob("*.crdownload")) and [p for p in downloads.glob("*.xlsx") if p.stat().st_size]
        ),
        seconds=10,
    )
    rows = read_back(files[0].read_bytes())
    row = next(r for r in rows if r["领用人"])
    assert row["设备"] == "DSJ-WEB-01（DSJ-V9）" and row["领用人"] == "张三（102345）"
    assert "电量 90%" in row["使用前检查"] and row["领用时间"] and row["归还时间"] and row["归还状况"] == "完好"
    assert row["管理员签字"] == "领用：王管理；归还接收：王管理" and "市监案〔2026〕30号" in row["备注"]

    browser.find_element(by().ID, "lang-en").click()
    wait(browser, lambda d: d.find_element(by().TAG_NAME, "h1").text == "Checkout ledger")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [e for e in errors if "/checkout" not in e or "422" not in e] == []  # only the refused checkout


def read_back(content: bytes) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content)).active
    values = [[c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "执法记录仪交接登记台账"
    header = next(i for i, row in enumerate(values) if "设备" in row)
    return [dict(zip(values[header], row, strict=True)) for row in values[header + 1 :]]


def test_an_officer_sees_only_their_entries_and_reports_a_fault(browser: Any, live: Site) -> None:
    sign_in(browser, live, "officer2")
    browser.get(f"{live.url}/ledger")
    assert browser.find_elements(by().ID, "no-entries")  # officer1's checkout is not theirs
    assert not browser.find_elements(by().ID, "export-xlsx")
    browser.get(f"{live.url}/ledger/faults")
    browser.find_element(by().CSS_SELECTOR, "#fault-pick button").click()
    wait(browser, lambda d: d.current_url.endswith("/devices/DSJ-WEB-01/fault"))
    fill(browser, {"description": "镜头有划痕"})
    browser.find_element(by().ID, "submit").click()
    wait(browser, lambda d: "done=fault" in d.current_url)
    assert browser.find_element(by().ID, "status").text == "维修中"
    browser.get(f"{live.url}/ledger/faults")
    assert "镜头有划痕" in browser.find_element(by().ID, "faults").text
