"""CSRF: the pages' token belongs to the session, and the API asks a browser (the session cookie) for
it on every state-changing call, while a bearer token needs none (issue 15, item 9)."""

from __future__ import annotations

import re

import httpx

from evidence_server.security import csrf_token_for
from tests.security.conftest import World, count


def page_token(client: httpx.Client) -> str:
    found = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/stations", headers={"Accept": "text/html"}).text
    )
    assert found is not None
    return found.group(1)


def test_a_page_token_fits_only_its_own_session(world: World) -> None:
    mine, theirs = (world.fresh_headers("sysadmin")["Authorization"][7:] for _ in range(2))
    with httpx.Client(base_url=world.server.url, cookies={"custodia_session": mine}) as me:
        token = page_token(me)
        assert token == csrf_token_for(mine)
        with httpx.Client(base_url=world.server.url, cookies={"custodia_session": theirs}) as other:
            stolen = other.post("/logout", data={"csrf_token": token})  # a token taken from another session
            assert stolen.status_code == 403
            # the old double submit: any value in both the cookie and the field passed for a signed-in user
            other.cookies.set("custodia_csrf", "x" * 40)
            assert other.post("/logout", data={"csrf_token": "x" * 40}).status_code == 403
            count("csrf probes", 2)
        assert me.post("/logout", data={"csrf_token": token}).status_code == 303


def test_cookie_authenticated_api_writes_need_the_csrf_header(world: World) -> None:
    token = world.fresh_headers("sysadmin")["Authorization"][7:]
    url = world.server.url + "/api/v1/audit/checkpoints"
    with httpx.Client(cookies={"custodia_session": token}) as browser:
        assert browser.get(world.server.url + "/api/v1/auth/me").status_code == 200  # reading needs none
        refused = browser.post(url)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]  # before: accepted
        other = world.fresh_headers("sysadmin")["Authorization"][7:]
        assert browser.post(url, headers={"X-CSRF-Token": csrf_token_for(other)}).status_code == 403
        given = browser.get(world.server.url + "/api/v1/auth/csrf").json()
        assert given == {"token": csrf_token_for(token), "header": "X-CSRF-Token"}
        assert browser.post(url, headers={"X-CSRF-Token": given["token"]}).status_code in (200, 201)
    count("csrf probes", 3)
    # a bearer token is sent only by code that holds it, never by a browser on its own: no CSRF token
    assert httpx.post(url, headers={"Authorization": f"Bearer {token}"}).status_code in (200, 201)


def test_a_station_token_in_a_cookie_is_not_a_station(world: World) -> None:
    r = httpx.post(
        world.server.url + "/api/v1/stations/me/heartbeat",
        cookies={"custodia_session": world.tokens["station"]},
        json={},
    )
    assert r.status_code == 401
