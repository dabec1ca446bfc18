"""The auditor's audit-log viewer in a real headless Chromium: search, an entry's inclusion proof checked
against the latest signed checkpoint, chosen entries exported as a signed excerpt that `custodia verify`
accepts, and that it refuses once a byte is changed or another key signed it."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_cli.main import cli
from custodia_wire import documents
from tests.web.conftest import PASSWORD, LiveServer, api_login, click_and_wait

pytestmark = pytest.mark.browser

By: Any = None
WebDriverWait: Any = None


@pytest.fixture(scope="module", autouse=True)
def _selenium(browser: Any) -> None:
    global By, WebDriverWait
    from selenium.webdriver.common.by import By as by
    from selenium.webdriver.support.ui import WebDriverWait as wait

    By, WebDriverWait = by, wait


def sign_in(browser: Any, server: LiveServer, username: str) -> None:
    browser.get(f"{server.url}/login")
    browser.delete_all_cookies()
    browser.get(f"{server.url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_wait(browser, browser.find_element(By.ID, "login-submit"))
    WebDriverWait(browser, 5).until(lambda d: "/login" not in d.current_url)


def server_key(server: LiveServer) -> str:
    with server.client() as api:
        return str(api.get("/api/v1/server-key").json()["public_key"])


def verify(path: Path, key: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", "--excerpt", str(path), "--key", key])
    return result.exit_code, result.output


def test_an_auditor_finds_entries_checks_one_and_exports_a_signed_excerpt(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    with live_server.client() as api:  # something to find: logins of the device administrator
        api_login(api, "devadmin")
        api_login(api, "devadmin")
    sign_in(browser, live_server, "auditor")
    browser.get(f"{live_server.url}/audit")
    browser.find_element(By.ID, "a-actor").send_keys("devadmin")
    browser.find_element(By.ID, "a-action").send_keys("auth.")
    click_and_wait(browser, browser.find_element(By.ID, "audit-search-submit"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit-entries tbody tr[data-action]")
    assert len(rows) >= 2 and {r.get_dom_attribute("data-action") for r in rows} == {"auth.login"}
    seqs = [r.get_dom_attribute("id").removeprefix("audit-") for r in rows[:2]]

    # the excerpt: choose two entries, export, check offline
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    for seq in seqs:
        browser.find_element(By.ID, f"choose-{seq}").click()
    browser.find_element(By.ID, "excerpt-purpose").send_keys("复议材料")
    browser.find_element(By.ID, "excerpt-submit").click()  # a download: the page stays
    # Chromium makes the file under its final name empty first and writes it as a .crdownload beside it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        [f for f in tmp_path.glob("audit-excerpt-*.json") if f.stat().st_size > 0]
        and not list(tmp_path.glob("*.crdownload"))
    ):
        time.sleep(0.1)
    (excerpt,) = tmp_path.glob("audit-excerpt-*.json")
    doc = json.loads(excerpt.read_text("utf-8"))
    assert sorted(str(e["entry"]["seq"]) for e in doc["entries"]) == sorted(seqs)
    assert doc["exported_by"] == "auditor" and doc["purpose"] == "复议材料"
    key = server_key(live_server)
    code, out = verify(excerpt, key)
    assert code == 0, out
    assert out.count("OK       entry") == 2 and "auth.login" in out

    # an entry's page: its inclusion proof, checked against the latest signed checkpoint
    browser.get(f"{live_server.url}/audit/entries/{seqs[0]}")
    result = browser.find_element(By.ID, "proof-result")
    assert result.get_dom_attribute("data-ok") == "yes"
    assert "已核对" in result.text
    assert '"action": "auth.login"' in browser.find_element(By.ID, "entry-json").text

    # the export itself is in the log
    browser.get(f"{live_server.url}/audit?action=audit.excerpt_exported")
    assert browser.find_elements(By.CSS_SELECTOR, "#audit-entries tr[data-action='audit.excerpt_exported']")


def test_an_altered_or_foreign_excerpt_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    with live_server.client() as api:
        token = api_login(api, "auditor")
        auth = {"Authorization": f"Bearer {token}"}
        entries = api.get("/api/v1/audit/entries", params={"limit": 3}, headers=auth).json()["items"]
        r = api.post("/api/v1/audit/excerpts", json={"seqs": [e["seq"] for e in entries]}, headers=auth)
        assert r.status_code == 200, r.text
        doc = r.json()
        # an officer may not export
        officer = {"Authorization": f"Bearer {api_login(api, 'officer1')}"}
        assert api.post("/api/v1/audit/excerpts", json={"seqs": [0]}, headers=officer).status_code == 403
    key = server_key(live_server)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc), "utf-8")
    assert verify(good, key)[0] == 0

    cases: dict[str, dict[str, Any]] = {}
    altered = json.loads(json.dumps(doc))
    altered["entries"][0]["entry"]["actor"]["name"] = "somebody-else"
    cases["entry altered"] = altered
    dropped = json.loads(json.dumps(doc))
    dropped["entries"].pop()
    cases["entry removed"] = dropped
    forger = Ed25519PrivateKey.generate()
    resigned = documents.sign({k: v for k, v in altered.items() if k != "signature"}, forger)
    cases["signed by another key"] = resigned
    for what, bad in cases.items():
        path = tmp_path / f"{what}.json"
        path.write_text(json.dumps(bad), "utf-8")
        code, out = verify(path, key)
        assert code == 1 and "FAILED" in out, what
    # with the forger's own key, the excerpt's signature passes but the checkpoint's does not
    forged_key = base64.b64encode(
        forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    code, out = verify(tmp_path / "signed by another key.json", forged_key)
    assert code == 1 and "checkpoint" in out
