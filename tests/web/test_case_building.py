"""Building a case in a real headless Chromium, as the case handler does it: find recordings by what a
person knows (file name, officer's name, time), tick several in a list and add them to a case by its
number; add one from its own page; and review footage with the player (speed, frame step, the next
segment of the same continuous recording). Nobody types an internal record number, and a handler of
another unit cannot add what is not theirs, however the form is forged."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role
from evidence_server.cases.models import CaseLink
from tests.web.conftest import (
    PASSWORD,
    LiveServer,
    add_recording,
    api_login,
    click_and_wait,
    enrol_station,
    open_transfer,
)
from tests.web.test_browser import fresh

pytestmark = pytest.mark.browser

By: Any = None
WebDriverWait: Any = None
CASE = "杭西市监处罚〔2026〕301号"
OTHER_CASE = "杭西市监处罚〔2026〕302号"
SERIAL = "DSJ-CASE-0001"
OFFICER = ("102345", "张三")


@pytest.fixture(scope="module", autouse=True)
def _selenium(browser: Any) -> None:
    global By, WebDriverWait
    from selenium.webdriver.common.by import By as by
    from selenium.webdriver.support.ui import WebDriverWait as wait

    By, WebDriverWait = by, wait


def clip(path: Path, seconds: int = 3) -> bytes:
    """A real, playable clip (VP9 in WebM, which any Chromium plays), 10 frames a second."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}"]
        + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "200k", str(path)],
        check=True,
    )
    return path.read_bytes()


@dataclass
class Footage:
    ids: dict[str, int]  # file name → record number (the test's own bookkeeping: never typed in a page)
    station_id: int


@pytest.fixture(scope="module")
def footage(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Footage]:
    site = live_server.site
    tmp = tmp_path_factory.mktemp("clips")
    with live_server.client() as api:
        admin = api_login(api, "admin")
        station_id, station = enrol_station(api, admin, "采集站-案件", site.unit_ids["U01"])
        transfer_id = open_transfer(api, station, SERIAL, officer=OFFICER, files=4, size=16_000)
        handler = api_login(api, "handler")
        for number in (CASE, OTHER_CASE):
            r = api.post(
                "/api/v1/cases",
                json={"number": number, "name": f"案件 {number[-5:]}", "enforcement_matter": "食品安全监督检查"},
                headers={"Authorization": f"Bearer {handler}"},
            )
            assert r.status_code == 201, r.text
    with site.session() as s:  # a case handler of the other unit: the hostile insider
        unit2 = accounts.ensure_unit(s, "U02", "第二市场监管所")
        accounts.create_user(s, username="handler_b", password=PASSWORD, role=Role.case_handler, unit=unit2)
        s.commit()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    ids: dict[str, int] = {}
    # one continuous recording the recorder split into three 3-second files, then a separate one
    for i, offset in enumerate((0, 3, 6, 600)):
        name = f"{SERIAL}_{(start + timedelta(seconds=offset)):%Y%m%d_%H%M%S}_{i}.webm"
        ids[name] = add_recording(
            site,
            transfer_id=transfer_id,
            station_id=station_id,
            unit="U01",
            serial=SERIAL,
            officer=OFFICER,
            name=name,
            content=clip(tmp / f"{i}.webm"),
            name_started_at=start + timedelta(seconds=offset),
            name_ended_at=start + timedelta(seconds=offset + 3),
            duration_s=3.0,
            frame_rate=10.0,
            codec="vp9",
        )
    yield Footage(ids, station_id)


def sign_in(browser: Any, server: LiveServer, username: str) -> None:
    fresh(browser, server)
    browser.get(f"{server.url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_wait(browser, browser.find_element(By.ID, "login-submit"))


def links_of(server: LiveServer, number: str) -> set[int]:
    from evidence_server.cases.models import Case

    with server.site.session() as s:
        case_id = s.scalar(select(Case.id).where(Case.number == number))
        return set(
            s.scalars(select(CaseLink.recording_id).where(CaseLink.case_id == case_id, CaseLink.unlinked_at.is_(None)))
        )


def test_the_handler_finds_recordings_by_file_name_ticks_several_and_adds_them_to_a_case(
    browser: Any, live_server: LiveServer, footage: Footage
) -> None:
    sign_in(browser, live_server, "handler")
    browser.get(f"{live_server.url}/recordings")
    browser.find_element(By.ID, "f-name").send_keys(f"{SERIAL}_")
    browser.find_element(By.ID, "f-officer").send_keys("张")  # part of the officer's name
    click_and_wait(browser, browser.find_element(By.ID, "filter-submit"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#recordings tbody tr")
    assert len(rows) == 4
    assert "张三" in rows[0].text
    # sorted by start, newest first by default; the column header turns it around
    names = [r.find_element(By.CSS_SELECTOR, "td:nth-child(5)").text for r in rows]
    assert names == sorted(names, reverse=True)
    click_and_wait(browser, browser.find_element(By.ID, "sort-started"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#recordings tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "td:nth-child(5)").text for r in rows] == sorted(names)
    first_two = sorted(footage.ids)[:2]
    for name in first_two:
        browser.find_element(By.ID, f"choose-{footage.ids[name]}").click()
    browser.find_element(By.ID, "add-case").send_keys(CASE)
    browser.find_element(By.ID, "add-reason").send_keys("现场检查全程录像")
    click_and_wait(browser, browser.find_element(By.ID, "add-submit"))
    assert "/cases/" in browser.current_url
    assert "已将 2 条录像加入本案" in browser.find_element(By.ID, "done").text
    page = browser.find_element(By.TAG_NAME, "main").text
    assert all(name in page for name in first_two)
    assert links_of(live_server, CASE) >= {footage.ids[n] for n in first_two}


def test_the_case_page_takes_a_file_name_and_the_recording_page_adds_itself(
    browser: Any, live_server: LiveServer, footage: Footage
) -> None:
    sign_in(browser, live_server, "handler")
    third, separate = sorted(footage.ids)[2], sorted(footage.ids)[3]
    browser.get(f"{live_server.url}/cases")
    click_and_wait(browser, browser.find_element(By.PARTIAL_LINK_TEXT, OTHER_CASE))
    browser.find_element(By.ID, "link-recording").send_keys(third)  # what the handler knows: its file name
    browser.find_element(By.ID, "link-reason").send_keys("补充证据")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#link-form button[type=submit]"))
    assert third in browser.find_element(By.TAG_NAME, "main").text
    assert footage.ids[third] in links_of(live_server, OTHER_CASE)
    browser.get(f"{live_server.url}/recordings/{footage.ids[separate]}")
    browser.find_element(By.ID, "add-case").send_keys(OTHER_CASE)
    browser.find_element(By.ID, "add-reason").send_keys("同一检查")
    click_and_wait(browser, browser.find_element(By.ID, "add-submit"))
    assert "已将 1 条录像加入本案" in browser.find_element(By.ID, "done").text
    assert footage.ids[separate] in links_of(live_server, OTHER_CASE)


def test_a_handler_of_another_unit_cannot_add_what_is_not_theirs_even_with_a_forged_form(
    live_server: LiveServer, footage: Footage
) -> None:
    """The insider of unit 2 posts unit 1's record numbers to the form, into unit 1's case and into a case
    of their own: refused each time, and nothing is linked (all or none)."""
    own_case = "杭西市监处罚〔2026〕901号"
    with live_server.client() as api:
        token = api_login(api, "handler_b")
        r = api.post(
            "/api/v1/cases",
            json={"number": own_case, "name": "第二所案件"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
    before = links_of(live_server, CASE)
    with httpx.Client(base_url=live_server.url, headers={"Accept": "text/html"}) as web:
        login = web.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        web.post("/login", data={"username": "handler_b", "password": PASSWORD, "csrf_token": csrf.group(1)})
        page = web.get("/recordings")
        assert page.status_code == 200
        assert all(name not in page.text for name in footage.ids)  # not even listed
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/cases").text)
        assert csrf is not None
        for number in (CASE, own_case):
            for ids in (list(footage.ids.values()), [str(footage.ids[sorted(footage.ids)[0]])]):
                r = web.post(
                    "/cases/add-recordings",
                    data={"case_number": number, "reason": "x", "csrf_token": csrf.group(1), "recording_ids": ids},
                )
                assert r.status_code == 422, (number, ids, r.status_code)
                assert "error-detail" in r.text
    assert links_of(live_server, CASE) == before
    assert links_of(live_server, own_case) == set()


def test_the_player_changes_speed_steps_frames_and_goes_on_to_the_next_segment(
    browser: Any, live_server: LiveServer, footage: Footage
) -> None:
    sign_in(browser, live_server, "handler")
    first, second, third, separate = sorted(footage.ids)
    browser.get(f"{live_server.url}/recordings/{footage.ids[second]}")
    assert "第 2 / 3 段" in browser.find_element(By.ID, "segment-of").text
    assert (
        browser.find_element(By.ID, "prev-segment")
        .get_dom_attribute("href")
        .startswith(f"/recordings/{footage.ids[first]}")
    )
    WebDriverWait(browser, 15).until(
        lambda d: d.execute_script("return document.getElementById('player').readyState") >= 1
    )
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "speed")).select_by_value("2")
    assert browser.execute_script("return document.getElementById('player').playbackRate") == 2
    browser.find_element(By.ID, "frame-fwd").click()
    browser.find_element(By.ID, "frame-fwd").click()
    WebDriverWait(browser, 5).until(
        lambda d: abs(d.execute_script("return document.getElementById('player').currentTime") - 0.2) < 0.01
    )
    browser.find_element(By.ID, "frame-back").click()
    WebDriverWait(browser, 5).until(
        lambda d: abs(d.execute_script("return document.getElementById('player').currentTime") - 0.1) < 0.01
    )
    # at the end of this file the player goes on to the next file of the same recording
    browser.execute_script(
        "var p = document.getElementById('player'); p.muted = true; p.currentTime = p.duration - 0.2; p.play();"
    )
    WebDriverWait(browser, 15).until(
        lambda d: d.current_url.split("?")[0].endswith(f"/recordings/{footage.ids[third]}")
    )
    assert "第 3 / 3 段" in browser.find_element(By.ID, "segment-of").text
    assert not browser.find_elements(By.ID, "next-segment")  # the separate recording 10 minutes later is not next
    browser.get(f"{live_server.url}/recordings/{footage.ids[separate]}")
    assert not browser.find_elements(By.ID, "segment-of")


def test_the_next_segment_never_leads_an_officer_into_footage_that_is_not_theirs(
    live_server: LiveServer, footage: Footage, tmp_path: Path
) -> None:
    """Officer 2 records right after officer 1's third file on the same recorder: to officer 2 it stands
    alone (no link to, nor count of, officer 1's files); the case handler sees one continuous recording."""
    site = live_server.site
    third = sorted(footage.ids)[2]
    with site.session() as s:
        from evidence_server.recordings.models import Recording

        after = s.get(Recording, footage.ids[third]).name_ended_at  # type: ignore[union-attr]
    with live_server.client() as api:
        admin = api_login(api, "admin")
        _, station = enrol_station(api, admin, "采集站-接续", site.unit_ids["U01"])
        transfer_id = open_transfer(api, station, SERIAL, officer=("102346", "李四"), files=1, size=16_000)
    theirs = add_recording(
        site,
        transfer_id=transfer_id,
        station_id=footage.station_id,
        unit="U01",
        serial=SERIAL,
        officer=("102346", "李四"),
        name=f"{SERIAL}_officer2.webm",
        content=clip(tmp_path / "o2.webm"),
        name_started_at=after,
        name_ended_at=after + timedelta(seconds=3),
        duration_s=3.0,
        frame_rate=10.0,
        codec="vp9",
    )
    with httpx.Client(base_url=live_server.url, headers={"Accept": "text/html"}) as web:
        login = web.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        web.post("/login", data={"username": "officer2", "password": PASSWORD, "csrf_token": csrf.group(1)})
        page = web.get(f"/recordings/{theirs}")
        assert page.status_code == 200
        assert 'id="prev-segment"' not in page.text and 'id="segment-of"' not in page.text
        assert web.get(f"/recordings/{footage.ids[third]}").status_code == 404  # and not reachable by hand
    with httpx.Client(base_url=live_server.url, headers={"Accept": "text/html"}) as web:
        login = web.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        web.post("/login", data={"username": "handler", "password": PASSWORD, "csrf_token": csrf.group(1)})
        page = web.get(f"/recordings/{theirs}")
        assert "第 4 / 4 段" in page.text and f'href="/recordings/{footage.ids[third]}?play=1"' in page.text
