"""The pages in a real headless Chromium against a live server: language, login, navigation,
the live station page, recordings with playback, logout, and no CSP violation anywhere."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import (
    PASSWORD,
    LiveServer,
    add_recording,
    api_login,
    click_and_wait,
    enrol_station,
    heartbeat,
    open_transfer,
    put_progress,
)

pytestmark = pytest.mark.browser

By: Any = None
WebDriverWait: Any = None
StaleElementReferenceException: Any = None


@pytest.fixture(scope="module", autouse=True)
def _selenium(browser: Any) -> None:
    """Import selenium only once the browser fixture has checked the tools are there."""
    global By, WebDriverWait, StaleElementReferenceException
    from selenium.common.exceptions import StaleElementReferenceException as stale
    from selenium.webdriver.common.by import By as by
    from selenium.webdriver.support.ui import WebDriverWait as wait

    By, WebDriverWait, StaleElementReferenceException = by, wait, stale


@dataclass
class Dock:
    station_id: int
    token: str


@pytest.fixture(scope="module")
def dock(live_server: LiveServer) -> Iterator[Dock]:
    with live_server.client() as api:
        admin = api_login(api, "admin")
        station_id, token = enrol_station(api, admin, "采集站-一号", live_server.site.unit_ids["U01"])
        heartbeat(api, token, spool_bytes=3 * 1024**3, free_bytes=812 * 1024**3, agent_version="0.1.0")
        yield Dock(station_id, token)


@pytest.fixture(autouse=True)
def _no_csp_violations(browser: Any) -> Iterator[None]:
    """Fail a test whose pages logged a CSP violation or any other console error."""
    browser.get_log("browser")
    yield
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def fresh(browser: Any, server: LiveServer) -> None:
    """Forget every cookie (session, CSRF, language) of the live server's origin."""
    browser.get(f"{server.url}/login")
    browser.delete_all_cookies()


def sign_in(browser: Any, server: LiveServer, username: str) -> None:
    browser.get(f"{server.url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 5).until(lambda d: "/login" not in d.current_url)


def html_lang(browser: Any) -> str:
    return str(browser.find_element(By.TAG_NAME, "html").get_dom_attribute("lang"))


def nav_labels(browser: Any) -> list[str]:
    return [a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav.mainnav a")]


def test_login_page_is_chinese_by_default(browser: Any, live_server: LiveServer) -> None:
    fresh(browser, live_server)
    browser.get(f"{live_server.url}/stations")
    assert browser.current_url == f"{live_server.url}/login?next=/stations"
    assert html_lang(browser) == "zh-CN"
    assert browser.find_element(By.TAG_NAME, "h1").text == "登录"
    assert browser.find_element(By.ID, "login-submit").text == "登录"


@pytest.mark.parametrize(
    ("username", "nav", "role"),
    [
        (
            "officer1",
            ["Home", "My recordings", "Devices", "Ledger", "To complete", "Compliance"],
            "Enforcement officer",
        ),
        (
            "devadmin",
            [
                "Home",
                "Recordings",
                "Stations",
                "Devices",
                "Ledger",
                "Search",
                "To complete",
                "Health",
                "Compliance",
                "Statistics",
                "Legal holds",
                "Admin",
            ],
            "Device administrator",
        ),
    ],
)
def test_switch_to_english_log_in_and_see_the_role_navigation(
    browser: Any, live_server: LiveServer, username: str, nav: list[str], role: str
) -> None:
    fresh(browser, live_server)
    browser.get(f"{live_server.url}/login")
    browser.find_element(By.ID, "lang-en").click()
    WebDriverWait(browser, 5).until(lambda d: html_lang(d) == "en")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Log in"
    sign_in(browser, live_server, username)
    assert html_lang(browser) == "en"
    assert nav_labels(browser) == nav
    assert role in browser.find_element(By.ID, "who").text


def test_station_page_shows_a_new_dock_and_its_progress_without_reload(
    browser: Any, live_server: LiveServer, dock: Dock, tmp_path: Path
) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/stations")
    assert nav_labels(browser) == [
        "工作台",
        "音像记录",
        "采集工作站",
        "设备",
        "交接台账",
        "查找录像",
        "待补登转存",
        "工作站运行状况",
        "违规情形",
        "合规统计",
        "保全",
        "系统管理",
    ]
    heading = browser.find_element(By.TAG_NAME, "h1")

    with live_server.client() as api:
        docked = time.monotonic()
        transfer = open_transfer(api, dock.token, "DSJ-LIVE-0001", officer=("102345", "张三"), files=4, size=50_000_000)
        row_id = f"transfer-{transfer}"
        WebDriverWait(browser, 5, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: d.find_elements(By.ID, row_id)
        )
        assert time.monotonic() - docked < 5
        row = browser.find_element(By.ID, row_id)
        assert "DSJ-LIVE-0001" in row.text and "102345 张三" in row.text and "已接入" in row.text

        put_progress(
            api,
            dock.token,
            transfer,
            state="copying",
            files_done=2,
            files_total=4,
            bytes_done=100_000_000,
            bytes_total=200_000_000,
            message="正在复制 DCIM/20261120/02.MP4",
        )

        def progressed(d: Any) -> bool:
            bar = d.find_element(By.CSS_SELECTOR, f"#{row_id} progress")
            return bool(bar.get_dom_attribute("value") == "100000000")

        WebDriverWait(browser, 5, ignored_exceptions=(StaleElementReferenceException,)).until(progressed)
    row = browser.find_element(By.ID, row_id)
    assert "2 / 4" in row.text and "复制中" in row.text and "正在复制 DCIM/20261120/02.MP4" in row.text
    assert heading.text == "采集工作站"  # the same element: the page was not reloaded
    assert "812.0 GiB" in browser.find_element(By.ID, "live").text
    shot = tmp_path / "stations.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"station page screenshot: {shot}")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, ffmpeg: None) -> bytes:
    """One second of H.264 video in MP4, as a recorder would write it."""
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def test_recordings_list_and_detail_with_playback(
    browser: Any, live_server: LiveServer, dock: Dock, clip: bytes, tmp_path: Path
) -> None:
    with live_server.client() as api:
        transfer = open_transfer(api, dock.token, "DSJ-PLAY-0001", officer=("102345", "张三"), files=1)
    own = add_recording(
        live_server.site,
        transfer_id=transfer,
        station_id=dock.station_id,
        unit="U01",
        serial="DSJ-PLAY-0001",
        officer=("102345", "张三"),
        name="DSJ-PLAY-0001_20261120_100000.MP4",
        content=clip,
        duration_s=1.0,
        width=320,
        height=240,
    )
    add_recording(
        live_server.site,
        transfer_id=transfer,
        station_id=dock.station_id,
        unit="U01",
        serial="DSJ-PLAY-0001",
        officer=("102346", "李四"),
        name="SOMEONE_ELSES.MP4",
    )
    fresh(browser, live_server)
    sign_in(browser, live_server, "officer1")
    browser.get(f"{live_server.url}/recordings")
    table = browser.find_element(By.ID, "recordings").text
    assert "DSJ-PLAY-0001_20261120_100000.MP4" in table and "SOMEONE_ELSES.MP4" not in table
    assert "UTC+08:00" in table and "320×240" in table
    browser.save_screenshot(str(tmp_path / "recordings.png"))

    browser.find_element(By.LINK_TEXT, "DSJ-PLAY-0001_20261120_100000.MP4").click()
    WebDriverWait(browser, 5).until(lambda d: d.current_url.endswith(f"/recordings/{own}"))
    video = browser.find_element(By.ID, "player")
    assert video.get_dom_attribute("src") == f"/api/v1/recordings/{own}/content"
    assert browser.find_element(By.ID, "blake3").text.startswith("blake3:")
    # the session cookie alone lets the player fetch and decode the evidence
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return arguments[0].readyState", video) >= 1)
    assert browser.execute_script("return arguments[0].duration", video) == pytest.approx(1.0, abs=0.1)
    browser.save_screenshot(str(tmp_path / "recording.png"))


def test_an_officer_sees_and_clears_the_recorders_important_mark_with_a_reason(
    browser: Any, live_server: LiveServer, dock: Dock
) -> None:
    """重要文件标记 on the pages: the badge in the list, the filter, the source on the recording's page, and
    clearing a mark the recorder set only with a reason; then setting it again as a person."""
    with live_server.client() as api:
        transfer = open_transfer(api, dock.token, "DSJ-IMP-0001", officer=("102345", "张三"), files=2)
    now = datetime.now(UTC)
    marked = add_recording(
        live_server.site,
        transfer_id=transfer,
        station_id=dock.station_id,
        unit="U01",
        serial="DSJ-IMP-0001",
        officer=("102345", "张三"),
        name="DSJ-IMP-0001_20261120_110000_IMP.MP4",
        important=True,
        important_source="device",
        important_how="file_name",
        important_at=now,
    )
    add_recording(
        live_server.site,
        transfer_id=transfer,
        station_id=dock.station_id,
        unit="U01",
        serial="DSJ-IMP-0001",
        officer=("102345", "张三"),
        name="DSJ-IMP-0001_20261120_111000.MP4",
    )
    fresh(browser, live_server)
    sign_in(browser, live_server, "officer1")
    browser.get(f"{live_server.url}/recordings?important=1&device_serial=DSJ-IMP-0001")
    table = browser.find_element(By.ID, "recordings").text
    assert "DSJ-IMP-0001_20261120_110000_IMP.MP4" in table and "111000" not in table
    assert browser.find_element(By.ID, f"important-{marked}").text == "重要"

    browser.get(f"{live_server.url}/recordings/{marked}")
    assert browser.find_element(By.ID, "important-source").text == "记录仪（文件名）"
    assert "复核前不得销毁" in browser.find_element(By.ID, "important-reviewed").text
    assert not browser.find_elements(By.ID, "important-action-review")  # officers do not review
    click_and_wait(browser, browser.find_element(By.ID, "important-action-clear"))  # no reason given
    assert "须填写清除理由" in browser.find_element(By.ID, "important-error").text
    browser.find_element(By.ID, "important-reason").send_keys("误按重要键 <b>x</b>")
    click_and_wait(browser, browser.find_element(By.ID, "important-action-clear"))
    assert browser.find_element(By.ID, "important-done").is_displayed()
    assert browser.find_element(By.ID, "important-state").text == "未标记"
    assert not browser.find_elements(By.ID, "important-badge")

    browser.find_element(By.ID, "important-reason").send_keys("现场有争执")
    click_and_wait(browser, browser.find_element(By.ID, "important-action-set"))
    assert browser.find_element(By.ID, "important-badge").text == "重要"
    assert browser.find_element(By.ID, "important-source").text == "张三"
    assert browser.find_element(By.ID, "important-note").text == "现场有争执"

    fresh(browser, live_server)  # a case handler finds it by the search page's filter
    sign_in(browser, live_server, "handler")
    browser.get(f"{live_server.url}/search?device_serial=DSJ-IMP-0001&important=1")
    results = browser.find_element(By.ID, "results").text
    assert "DSJ-IMP-0001_20261120_110000_IMP.MP4" in results and "111000" not in results
    assert browser.find_element(By.ID, f"important-{marked}").text == "重要"
    assert browser.find_element(By.ID, "s-important").get_attribute("value") == "1"


def test_station_page_goes_to_login_when_the_session_ends(browser: Any, live_server: LiveServer) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.get(f"{live_server.url}/stations")
    token = browser.get_cookie("custodia_session")["value"]
    with live_server.client() as api:
        api.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    WebDriverWait(browser, 5).until(lambda d: d.current_url == f"{live_server.url}/login?next=/stations")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all("/stations/live" in e and "401" in e for e in errors)  # the refresh that found it out


def test_logout(browser: Any, live_server: LiveServer) -> None:
    fresh(browser, live_server)
    sign_in(browser, live_server, "devadmin")
    browser.find_element(By.ID, "logout").click()
    WebDriverWait(browser, 5).until(lambda d: d.current_url.endswith("/login"))
    browser.get(f"{live_server.url}/stations")
    assert browser.current_url == f"{live_server.url}/login?next=/stations"
