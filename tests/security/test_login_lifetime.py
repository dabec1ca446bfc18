"""A login's token opens the API only while the login lives: not once it expired, not once it was revoked,
not once its user was deactivated, and never for a token that is not a login's. The guard decides all
of that in one statement (evidence_server.security); these try each way past it, on both databases."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from sqlalchemy import update

from evidence_server.accounts.models import LoginSession, User
from evidence_server.accounts.secrets import USER_TOKEN_PREFIX, token_hash
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from tests.support.live import LiveServer

ME = "/api/v1/auth/me"
RECORDINGS = "/api/v1/recordings?limit=5"


def _answers(server: LiveServer, token: str) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {token}"}
    return (
        httpx.get(server.url + ME, headers=headers).status_code,
        httpx.get(server.url + RECORDINGS, headers=headers).status_code,
    )


def _change(server: LiveServer, statement) -> None:  # type: ignore[no-untyped-def]
    ctx = ServerContext(server.settings())
    try:
        with ctx.sessionmaker() as s:
            s.execute(statement)
            s.commit()
    finally:
        ctx.close()


def test_a_login_opens_the_api_only_while_it_lives(live_server_any_db: LiveServer) -> None:
    server = live_server_any_db
    tokens = {name: server.create_user(name, "auditor") for name in ("alive", "expired", "revoked", "deactivated")}
    for token in tokens.values():
        assert _answers(server, token) == (200, 200)  # each opens the API before anything is changed

    now = utcnow()
    _change(
        server,
        update(LoginSession)
        .where(LoginSession.token_hash == token_hash(tokens["expired"]))
        .values(expires_at=now - timedelta(seconds=1)),
    )
    _change(
        server,
        update(LoginSession).where(LoginSession.token_hash == token_hash(tokens["revoked"])).values(revoked_at=now),
    )
    _change(server, update(User).where(User.username == "deactivated").values(active=False))

    assert _answers(server, tokens["alive"]) == (200, 200)
    for name in ("expired", "revoked", "deactivated"):
        assert _answers(server, tokens[name]) == (401, 401), name

    # a login whose expiry is a moment away works until then, and not after
    token = server.create_user("expires_now", "auditor")
    _change(
        server,
        update(LoginSession)
        .where(LoginSession.token_hash == token_hash(token))
        .values(expires_at=utcnow() + timedelta(seconds=2)),
    )
    assert _answers(server, token) == (200, 200)
    time.sleep(2.5)
    assert _answers(server, token) == (401, 401)

    # tokens that are no login's: made up, another's with a byte changed, a login's hash sent as the token
    alive = tokens["alive"]
    for forged in (
        USER_TOKEN_PREFIX + "0" * 40,
        alive[:-1] + ("A" if alive[-1] != "A" else "B"),
        token_hash(alive),
        USER_TOKEN_PREFIX + token_hash(alive),
        alive + " ",
        alive.upper(),
    ):
        if forged.strip() == alive:
            continue  # (the header's value is stripped: the same token)
        assert _answers(server, forged) == (401, 401), forged
