"""Screenshots of the main pages for the README (``scripts/screenshots``): a seeded site, a live
server, headless Chromium, one PNG per page under ``docs/screenshots/``."""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from evidence_server.app import create_app
from evidence_server.transfers.models import TransferFile
from tests.web.conftest import (
    PASSWORD,
    Site,
    add_recording,
    api_login,
    enrol_station,
    heartbeat,
    make_site,
    open_transfer,
    put_progress,
)

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: (file name, user, path): the pages a newcomer meets first.
SHOTS = (
    ("login.png", None, "/login"),
    ("officer-home.png", "officer1", "/"),
    ("device-admin-home.png", "devadmin", "/"),
    ("stations.png", "devadmin", "/stations"),
    ("fleet.png", "devadmin", "/fleet"),
    ("admin-users.png", "admin", "/admin/users"),
    ("admin-stations.png", "admin", "/admin/stations"),
    ("recordings.png", "devadmin", "/recordings"),
    ("audit.png", "auditor", "/audit"),
    ("auditor-home.png", "auditor", "/"),
)


def seed(site: Site, url: str) -> None:
    """A station with a failed port and a dock in progress, recordings, and a signed audit excerpt's worth of log."""
    with httpx.Client(base_url=url, timeout=30) as api:
        admin = api_login(api, "admin")
        station_id, token = enrol_station(api, admin, "采集站-一号", site.unit_ids["U01"])
        heartbeat(api, token, spool_bytes=2 * 1024**3, free_bytes=800 * 1024**3, agent_version="0.1.0")
        auth = {"Authorization": f"Bearer {token}"}
        done = open_transfer(api, token, "DSJ0001", officer=("102345", "张三"), files=3, size=40_000_000)
        for i in range(3):
            rec = add_recording(
                site,
                transfer_id=done,
                station_id=station_id,
                unit="U01",
                serial="DSJ0001",
                officer=("102345", "张三"),
                name=f"DSJ0001_102345_2026112009{i}000_000{i + 1}.MP4",
                original_path=f"DCIM/20261120/DSJ0001_20261120_0{i}0000.MP4",
            )
            with site.session() as s:
                s.add(
                    TransferFile(
                        transfer_id=done, recording_id=rec, path=f"DCIM/20261120/DSJ0001_20261120_0{i}0000.MP4"
                    )
                )
                s.commit()
        put_progress(
            api, token, done, state="done", files_total=3, files_done=3, bytes_total=120_000_000, bytes_done=120_000_000
        )
        busy = open_transfer(api, token, "DSJ0003", officer=("102345", "张三"), files=4, size=50_000_000)
        put_progress(
            api,
            token,
            busy,
            state="uploading",
            files_total=4,
            files_done=1,
            bytes_total=200_000_000,
            bytes_done=80_000_000,
        )
        api.post(
            "/api/v1/stations/me/ports",
            headers=auth,
            json={
                "port": "ZFY_DSJ0003",
                "state": "transferring",
                "device_serial": "DSJ0003",
                "transfer_id": busy,
                "advice": "wait",
            },
        )
        api.post(
            "/api/v1/stations/me/ports",
            headers=auth,
            json={
                "port": "ZFY_DSJ0002",
                "state": "failed",
                "reason": "the recorder's serial could not be read: no serial given and none in file names",
                "advice": "redock",
            },
        )
        auditor = {"Authorization": f"Bearer {api_login(api, 'auditor')}"}
        api.post("/api/v1/audit/checkpoints", headers=auditor)


@contextmanager
def live(site: Site) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(site.settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium(width: int, height: int) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)


def sign_in(driver: Any, url: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login")
    driver.delete_all_cookies()
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="custodia-shots-") as tmp:
        site = make_site(Path(tmp))
        with live(site) as url:
            seed(site, url)
            driver = chromium(args.width, args.height)
            try:
                current = ""
                for name, user, path in SHOTS:
                    if user != current:
                        if user is None:
                            driver.get(f"{url}/login")
                            driver.delete_all_cookies()
                        else:
                            sign_in(driver, url, user)
                        current = user or ""
                    driver.get(url + path)
                    time.sleep(0.3)
                    driver.save_screenshot(str(args.out / name))
                    print(args.out / name)
            finally:
                driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
