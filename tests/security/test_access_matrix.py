"""Deny by default, checked on the running server: every route, asked by every kind of caller.

A caller a route does not admit gets 401 (not authenticated as what the route wants) or the guard's
403; a caller it admits never does. Identifiers in paths name nothing that exists, so an admitted
call changes nothing (404/422 at most), and no answer is ever a server error.
"""

from __future__ import annotations

import re

import httpx

from evidence_server.accounts.models import Role
from evidence_server.app import create_app
from evidence_server.security import route_table
from tests.security.conftest import World, count

CALLERS = ("anonymous", *(r.value for r in Role), "station", "monitoring")
GUARD_403 = "your role may not do this"
#: Calls that end the session they are made with get a session of their own.
ENDS_SESSION = ("/logout",)


def fill(path: str) -> str:
    """The path with every parameter naming something that does not exist."""
    return re.sub(r"\{[^}]+\}", lambda m: "approve" if m.group(0) == "{decision}" else "999999", path)


def guard_refused(resp: httpx.Response) -> bool:
    if resp.status_code == 401:
        return True
    if resp.status_code != 403:
        return False
    try:
        detail = resp.json().get("detail")
    except ValueError:
        return False
    return detail == GUARD_403 or (resp.request.url.path == "/metrics")


def admits(roles: frozenset[str], caller: str) -> bool:
    return caller in roles or "public" in roles


def test_every_route_refuses_every_caller_it_does_not_admit(world: World) -> None:
    routes = route_table(create_app(world.server.settings()))
    assert len(routes) > 60
    wrong: list[str] = []
    with httpx.Client(base_url=world.server.url, timeout=30) as http:
        for caller in CALLERS:
            for methods, path, roles in routes:
                for method in methods.split(","):
                    ends_session = any(path.endswith(s) for s in ENDS_SESSION)
                    headers = world.fresh_headers(caller) if ends_session else world.headers(caller)
                    resp = http.request(
                        method, fill(path), headers=headers, json={} if method in ("POST", "PUT", "PATCH") else None
                    )
                    count("access-matrix requests")
                    refused = guard_refused(resp)
                    if resp.status_code >= 500:
                        wrong.append(f"{caller} {method} {path}: server error {resp.status_code}")
                    elif admits(roles, caller) and refused:
                        wrong.append(
                            f"{caller} {method} {path}: admitted by {sorted(roles)} but refused "
                            f"{resp.status_code} {resp.text[:80]}"
                        )
                    elif not admits(roles, caller) and not refused:
                        wrong.append(
                            f"{caller} {method} {path}: not admitted ({sorted(roles)}) but answered "
                            f"{resp.status_code} {resp.text[:80]}"
                        )
    assert wrong == [], "\n".join(wrong)


def test_tokens_of_the_wrong_kind_or_forged_are_refused(world: World) -> None:
    station, officer = world.tokens["station"], world.tokens["officer"]
    cases = [
        ("/api/v1/recordings", station),
        ("/api/v1/recordings", "cus_u_" + "A" * 43),
        ("/api/v1/recordings", officer[:-1] + ("A" if officer[-1] != "A" else "B")),
        ("/api/v1/recordings", "Bearer"),
        ("/api/v1/recordings", "' OR 1=1 --"),
    ]
    for path, token in cases:
        r = httpx.get(world.server.url + path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (path, token, r.status_code)
    r = httpx.post(world.server.url + "/api/v1/transfers", json={}, headers={"Authorization": f"Bearer {officer}"})
    assert r.status_code == 401
