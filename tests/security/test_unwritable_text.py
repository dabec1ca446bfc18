"""Text no encoding can write, in every JSON body, query and path the API takes, as a caller admitted to it:
a clear 4xx, never a 500. JSON's ``\\udcff`` escape carries a lone surrogate, and Python's parser takes it;
validation refuses it, and FastAPI's answer, echoing the refused input, then failed to encode: a 500 on
every route with a JSON body (a station's refused file name was how it was met). Bytes that are not UTF-8
in a query or a path are tried too. On SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evidence_server.app import create_app
from evidence_server.security import route_table
from tests.security.conftest import World, build_world, count
from tests.support.databases import SqliteTemplates

UNWRITABLE = "名\udcff\ud800"  # two lone surrogates (a low one, a high one) beside a character that is fine
NOT_UTF8 = "%ED%B3%BF%FF"  # the surrogate's UTF-8 form (refused by UTF-8) and a byte no UTF-8 has
#: the callers tried for an operation, most able first: the first one admitted is used
CALLERS = ("sysadmin", "legal_affairs", "device_admin", "case_handler", "auditor", "officer", "station", "monitoring")
SKIP = {("POST", "/api/v1/auth/logout")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("unwritable"), sqlite_templates)
    yield w
    w.server.stop()


def _schema(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = doc["components"]["schemas"][name]
    return node


def hostile_body(doc: dict[str, Any], op: dict[str, Any]) -> dict[str, Any] | None:
    """Every property the operation's JSON body names set to the unwritable text, and a key of it too."""
    content = (op.get("requestBody") or {}).get("content") or {}
    if "application/json" not in content:
        return None
    schema = _schema(doc, content["application/json"].get("schema") or {})
    body: dict[str, Any] = dict.fromkeys(schema.get("properties") or {}, UNWRITABLE)
    body[UNWRITABLE] = UNWRITABLE
    return body


def test_unwritable_text_anywhere_is_refused_clearly_never_a_server_error(world: World) -> None:
    server = world.server
    doc = httpx.get(server.url + "/openapi.json", timeout=30).json()
    admitted = {(m, p): roles for ms, p, roles in route_table(create_app(server.settings())) for m in ms.split(",")}
    failures: list[str] = []
    tried = 0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                key = (method.upper(), path)
                roles = admitted.get(key, frozenset())
                caller = next((c for c in CALLERS if c in roles), None)
                if key in SKIP or (caller is None and "public" not in roles):
                    continue
                headers = world.headers(caller) if caller else {}
                params = [p for p in op.get("parameters") or [] if p["in"] in ("path", "query")]
                url = path
                for p in params:
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", NOT_UTF8)
                query = "&".join(f"{p['name']}={NOT_UTF8}" for p in params if p["in"] == "query")
                body = hostile_body(doc, op)
                tries: list[tuple[str, bytes | None]] = [(url + (f"?{query}" if query else ""), None)]
                if body is not None:  # the escapes as a client writes them: ASCII JSON
                    tries.append((path.replace("{", "").replace("}", ""), json.dumps(body).encode()))
                for target, content in tries:
                    h = {**headers, **({"Content-Type": "application/json"} if content is not None else {})}
                    tried += 1
                    try:
                        r = http.request(method.upper(), target, content=content, headers=h)
                    except httpx.TransportError as exc:  # the server failed while answering
                        failures.append(f"{method.upper()} {target} as {caller}: no answer ({exc!r})")
                        continue
                    if r.status_code >= 500:
                        failures.append(f"{method.upper()} {target} as {caller}: {r.status_code} {r.text[:200]}")
                    elif content is not None and r.status_code == 422:
                        json.loads(r.content)  # the answer is JSON a client can read
    count("requests with unwritable text", tried)
    assert tried > 100
    assert failures == [], f"{len(failures)} server errors:\n" + "\n".join(failures[:40])
