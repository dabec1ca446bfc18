"""Logins, sessions and the browser: lockout, rate limit, cookie flags, CSRF, security headers."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from evidence_server.accounts.models import User
from evidence_server.app import create_app
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.security import route_table
from tests.security.conftest import World, count
from tests.support.live import ADMIN_PASSWORD, LiveServer

LOGIN = "/api/v1/auth/login"


def login(server: LiveServer, username: str, password: str) -> httpx.Response:
    count("login attempts")
    return httpx.post(server.url + LOGIN, json={"username": username, "password": password})


def test_an_account_locks_after_five_wrong_passwords_and_opens_again_later(server_with) -> None:
    server = server_with()
    server.create_user("clerk", "officer", officer_no="100001")
    assert [login(server, "clerk", f"guess-{i}-xxxx").status_code for i in range(5)] == [401] * 4 + [423]
    locked = login(server, "clerk", "clerk-password-123")
    assert locked.status_code == 423 and "locked" in locked.json()["detail"]
    assert login(server, "admin", ADMIN_PASSWORD).status_code == 200  # other accounts are not affected

    ctx = ServerContext(server.settings())  # the lockout has run out
    with ctx.sessionmaker() as session:
        user = session.scalar(select(User).where(User.username == "clerk"))
        assert user is not None and user.locked_until is not None
        assert user.locked_until - utcnow() > timedelta(minutes=14)
        user.locked_until = utcnow() - timedelta(seconds=1)
        session.commit()
    ctx.close()
    assert login(server, "clerk", "clerk-password-123").status_code == 200
    # a success resets the count: four more failures do not lock
    assert [login(server, "clerk", "wrong-password-x").status_code for _ in range(4)] == [401] * 4
    assert login(server, "clerk", "clerk-password-123").status_code == 200


def test_the_login_page_tells_a_locked_account_apart(server_with) -> None:
    server = server_with(CUSTODIA_LOGIN_MAX_FAILURES="2")
    with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}) as browser:
        for _ in range(2):
            page = browser.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            r = browser.post(
                "/login", data={"username": "admin", "password": "not-the-password", "csrf_token": token.group(1)}
            )
        assert r.status_code == 423
        assert "locked" in r.text or "锁定" in r.text


def test_failed_logins_from_one_address_are_throttled(server_with) -> None:
    server = server_with(CUSTODIA_LOGIN_FAILURES_PER_ADDRESS="6", CUSTODIA_LOGIN_FAILURE_WINDOW_S="8")
    with ThreadPoolExecutor(6) as pool:  # each costs a password check, unknown usernames too: keep in the window
        codes = list(pool.map(lambda i: login(server, f"nobody{i}", "password-guess").status_code, range(6)))
    assert codes == [401] * 6
    throttled = login(server, "admin", ADMIN_PASSWORD)  # even the right password waits
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    time.sleep(int(throttled.headers["Retry-After"]) + 0.2)
    assert login(server, "admin", ADMIN_PASSWORD).status_code == 200


def test_session_and_csrf_cookies_are_secure_httponly_samesite(server_with) -> None:
    server = server_with(CUSTODIA_COOKIE_SECURE="true")
    r = login(server, "admin", ADMIN_PASSWORD)
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("custodia_session=")
    assert "; secure" in cookie and "; httponly" in cookie and "samesite=strict" in cookie
    page = httpx.get(server.url + "/login", headers={"Accept": "text/html"})
    csrf_cookie = page.headers["set-cookie"].lower()
    assert "; secure" in csrf_cookie and "; httponly" in csrf_cookie and "samesite=strict" in csrf_cookie


def test_login_form_refuses_a_post_without_its_csrf_token(world: World) -> None:
    r = httpx.post(world.server.url + "/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 403 and "custodia_session" not in r.headers.get("set-cookie", "")
    forged = httpx.post(
        world.server.url + "/login",
        cookies={"custodia_csrf": "a" * 40},
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": "b" * 40},
    )
    assert forged.status_code == 403


def page_values(world: World) -> dict[str, str]:
    own = world.units[1]
    return {
        "serial": own.serial,
        "case_id": str(own.case_id or 1),
        "recording_id": str(own.recording_ids[0]),
        "transfer_id": own.transfer_id,
        "request_id": "1",
        "share_id": "1",
        "decision": "approve",
    }


def test_every_form_post_is_refused_without_the_csrf_token(world: World) -> None:
    """A cross-site form can make the browser send the session cookie, never the matching token."""
    values = page_values(world)
    posts = [
        path
        for methods, path, _ in route_table(create_app(world.server.settings()))
        if "POST" in methods.split(",") and not path.startswith("/api/") and path != "/login"
    ]
    # the push-ingest (Swift) routes take an X-Auth-Token, never the session cookie: a cookie alone is
    # not let in at all (redirected to the login page, or 401), which the check below also accepts
    swift = [p for p in posts if p.startswith(("/v1/", "/auth/"))]
    assert posts, "no form routes found"
    session = world.tokens["sysadmin"]
    accepted = []
    for path in posts:
        url = re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "1"), path)
        if url == "/logout":
            session = world.fresh_headers("sysadmin")["Authorization"].removeprefix("Bearer ")
        r = httpx.post(
            world.server.url + url,
            cookies={"custodia_session": session, "custodia_csrf": "c" * 40},
            data={"csrf_token": "d" * 40, "reason": "x", "name": "x"},
            headers={"Accept": "text/html"},
        )
        count("csrf probes")
        refused = (401, 403, 303) if path in swift else (403,)
        if r.status_code not in refused or (r.status_code == 303 and "/login" not in r.headers.get("location", "")):
            accepted.append(f"POST {url}: {r.status_code}")
    assert accepted == [], accepted


@pytest.mark.parametrize(
    "path", ["/api/v1/recordings", "/login", "/api/v1/nothing-here", "/static/favicon.svg", "/healthz"]
)
def test_security_headers_on_every_kind_of_answer(world: World, path: str) -> None:
    r = httpx.get(world.server.url + path, headers=world.headers("sysadmin"))
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_logout_ends_the_session_for_good(world: World) -> None:
    headers = world.fresh_headers("auditor")
    assert httpx.get(world.server.url + "/api/v1/auth/me", headers=headers).status_code == 200
    assert httpx.post(world.server.url + "/api/v1/auth/logout", headers=headers).status_code == 204
    assert httpx.get(world.server.url + "/api/v1/auth/me", headers=headers).status_code == 401
