"""The case pages in a real headless Chromium against a live server: open a case and link footage,
find it by case number (with thumbnails), play it (the original, and the proxy of an H.265 file),
see the officer's day, and export the court package, which then verifies offline."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evidence_server.media.derive import derive_recording
from tests.conftest import make_video
from tests.web.conftest import (  # noqa: F401  (module-scoped fixtures: one server and one browser here)
    PASSWORD,
    LiveServer,
    add_recording,
    api_login,
    app,
    browser,
    enrol_station,
    live_server,
    open_transfer,
    site,
)

pytestmark = [pytest.mark.browser, pytest.mark.ffmpeg]
CASE = "杭西市监处罚〔2026〕301号"

By: Any = None
WebDriverWait: Any = None


@pytest.fixture(scope="module", autouse=True)
def _selenium(browser: Any) -> None:  # noqa: F811
    global By, WebDriverWait
    from selenium.webdriver.common.by import By as by
    from selenium.webdriver.support.ui import WebDriverWait as wait

    By, WebDriverWait = by, wait


@pytest.fixture(autouse=True)
def _no_console_errors(browser: Any) -> Iterator[None]:  # noqa: F811
    """No CSP violation, no failed image or media load on any page of these tests."""
    browser.get_log("browser")
    yield
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


@dataclass
class Footage:
    h264: int
    h265: int


@pytest.fixture(scope="module")
def footage(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory, ffmpeg: None) -> Footage:  # noqa: F811
    folder = tmp_path_factory.mktemp("footage")
    with live_server.client() as api:
        admin = api_login(api, "admin")
        station_id, token = enrol_station(api, admin, "采集站-案件", live_server.site.unit_ids["U01"])
        transfer = open_transfer(api, token, "DSJ-CASE-01", officer=("102345", "张三"), files=2)
    ids = []
    for codec, name in (("libx264", "DSJ-CASE-01_20261120_093000.MP4"), ("libx265", "DSJ-CASE-01_20261120_100000.MP4")):
        clip = make_video(folder / name, seconds=2.0, codec=codec, size="320x240")
        ids.append(
            add_recording(
                live_server.site,
                transfer_id=transfer,
                station_id=station_id,
                unit="U01",
                serial="DSJ-CASE-01",
                officer=("102345", "张三"),
                name=name,
                content=clip.read_bytes(),
                probe_state="pending",
            )
        )
    ctx = live_server_app_ctx(live_server)
    for rid in ids:
        derive_recording(ctx, rid)
    return Footage(*ids)


def live_server_app_ctx(server: LiveServer) -> Any:
    from evidence_server.context import ServerContext

    return ServerContext(server.site.settings)


def sign_in(browser: Any, server: LiveServer, username: str) -> None:  # noqa: F811
    browser.get(f"{server.url}/login")
    browser.delete_all_cookies()
    browser.get(f"{server.url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 5).until(lambda d: "/login" not in d.current_url)


def fill(browser: Any, field_id: str, value: str) -> None:  # noqa: F811
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def test_open_a_case_link_footage_and_find_it_by_case_number(
    browser: Any,
    live_server: LiveServer,  # noqa: F811
    footage: Footage,
) -> None:
    sign_in(browser, live_server, "handler")
    browser.get(f"{live_server.url}/cases")
    fill(browser, "number", "杭西市监处罚[2026]301号")
    fill(browser, "name", "某商场销售不合格产品案")
    fill(browser, "matter", "产品质量监督检查")
    browser.find_element(By.ID, "create-case").click()
    WebDriverWait(browser, 5).until(lambda d: "done=created" in d.current_url)
    assert browser.find_element(By.ID, "case-number").text == CASE
    for rid in (footage.h264, footage.h265):
        fill(browser, "link-recording", str(rid))
        fill(browser, "link-reason", "现场检查全过程")
        browser.find_element(By.CSS_SELECTOR, "#link-form button").click()
        WebDriverWait(browser, 5).until(lambda d, rid=rid: d.find_elements(By.ID, f"case-recording-{rid}"))

    browser.get(f"{live_server.url}/search")
    fill(browser, "s-case", "杭西市监处罚〔2026〕")
    browser.find_element(By.CSS_SELECTOR, "#s-match option[value=prefix]").click()
    browser.find_element(By.ID, "search-submit").click()
    WebDriverWait(browser, 5).until(lambda d: d.find_elements(By.ID, "results"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert {r.get_dom_attribute("id") for r in rows} == {f"result-{footage.h264}", f"result-{footage.h265}"}
    assert all(CASE in r.text for r in rows)
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#results img.thumb")
    assert len(thumbs) == 2
    WebDriverWait(browser, 5).until(
        lambda d: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", t) == 320 for t in thumbs
        )
    )
    # an exact search by an unknown number says so
    browser.get(f"{live_server.url}/search?case_number=杭西市监处罚〔2026〕999号")
    assert "没有这个编号的案件" in browser.find_element(By.ID, "search-error").text


def playing(browser: Any) -> bool:  # noqa: F811
    return bool(
        browser.execute_script(
            "const v = document.getElementById('player');"
            "return v.readyState >= 2 && !v.paused && !v.ended && v.currentTime > 0.3;"
        )
    )


@pytest.mark.parametrize("which", ["h264", "h265"])
def test_open_a_recording_and_play_it(
    browser: Any,
    live_server: LiveServer,
    footage: Footage,  # noqa: F811
    which: str,
) -> None:
    rid = getattr(footage, which)
    sign_in(browser, live_server, "handler")
    browser.get(f"{live_server.url}/search?case_number={CASE}")
    browser.find_element(By.CSS_SELECTOR, f"#result-{rid} td:nth-child(2) a").click()
    WebDriverWait(browser, 5).until(lambda d: d.current_url.endswith(f"/recordings/{rid}"))
    video = browser.find_element(By.ID, "player")
    expected = "proxy" if which == "h265" else "content"
    assert video.get_dom_attribute("src") == f"/api/v1/recordings/{rid}/{expected}"
    assert bool(browser.find_elements(By.ID, "proxy-note")) is (which == "h265")
    browser.execute_script("const v = arguments[0]; v.muted = true; v.play();", video)
    WebDriverWait(browser, 10).until(playing)
    first = browser.execute_script("return arguments[0].currentTime", video)
    time.sleep(0.4)
    assert browser.execute_script("return arguments[0].currentTime", video) > first
    assert CASE in browser.find_element(By.ID, "recording-cases").text
    kinds = [r.get_dom_attribute("data-kind") for r in browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")]
    assert "recording" in kinds and "dock" in kinds


def test_export_the_court_package_and_verify_it(
    browser: Any,
    live_server: LiveServer,
    footage: Footage,  # noqa: F811
    tmp_path: Path,
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    sign_in(browser, live_server, "handler")
    browser.get(f"{live_server.url}/cases")
    browser.find_element(By.LINK_TEXT, CASE).click()
    browser.find_element(By.ID, "export").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = [p for p in downloads.iterdir() if p.suffix == ".zip"]
        if done and not list(downloads.glob("*.crdownload")):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no package downloaded: {list(downloads.iterdir())}")
    (package,) = done
    assert package.name.startswith("case-") and "2026" in package.name
    from custodia_wire import keys, package_check

    server_ctx = live_server_app_ctx(live_server)
    signer = keys.load(server_ctx.public_key_b64)
    server_ctx.close()
    findings = package_check.verify(package, package_check.Options(trust=keys.Trust([signer], set())))
    assert package_check.status_of(findings) == package_check.Status.VERIFIED, [f.line() for f in findings if not f.ok]
    listing = subprocess.run(["unzip", "-l", str(package)], capture_output=True, text=True, check=True).stdout
    assert "manifest.json" in listing and "recordings/" in listing and "ledger/" in listing
