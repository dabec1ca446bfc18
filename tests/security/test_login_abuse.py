"""Logins under attack: parallel guesses, usernames told apart by the work done, sessions that outlive
a password, and common passwords (issue 15, item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from evidence_server.accounts import secrets
from evidence_server.accounts.models import User
from evidence_server.accounts.passwords import password_problem
from evidence_server.app import create_app
from evidence_server.config import get_settings
from evidence_server.context import ServerContext
from tests.security.conftest import count
from tests.support.live import LiveServer

LOGIN = "/api/v1/auth/login"
PASSWORD = "clerk-password-123"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A live server on SQLite and on PostgreSQL, the per-address throttle out of the way (the
    account's lockout is what is tested here)."""
    live = LiveServer(
        data_dir=tmp_path / "server", database_url=database_url, env={"CUSTODIA_LOGIN_FAILURES_PER_ADDRESS": "0"}
    )
    live.data_dir.mkdir(parents=True)
    live.bootstrap()
    live.start()
    live.create_user("clerk", "officer", officer_no="100001")
    yield live
    live.stop()


def login(server: LiveServer, username: str, password: str) -> httpx.Response:
    count("login attempts")
    return httpx.post(server.url + LOGIN, json={"username": username, "password": password}, timeout=60)


def stored(server: LiveServer, username: str) -> User:
    ctx = ServerContext(server.settings())
    try:
        with ctx.sessionmaker() as session:
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None
            return user
    finally:
        ctx.close()


def test_wrong_passwords_sent_at_once_all_count_and_lock_the_account(server: LiveServer) -> None:
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: login(server, "clerk", f"guess-{i:02d}-wrong").status_code, range(20)))
    assert set(answers) <= {401, 423} and 423 in answers, answers
    assert stored(server, "clerk").locked_until is not None  # before: 20 parallel guesses left the count at 3
    assert login(server, "clerk", PASSWORD).status_code == 423  # the right password no longer gets in


class CountingHasher(secrets.PasswordHasher):
    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        CountingHasher.verified += 1
        return super().verify(hash, password)


def test_an_unknown_username_costs_the_same_password_check_as_a_known_one(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = LiveServer(data_dir=tmp_path / "server", database_url=sqlite_url)
    live.data_dir.mkdir(parents=True)
    live.bootstrap()
    monkeypatch.setattr(secrets, "_hasher", CountingHasher())
    with TestClient(create_app(live.settings(), with_web=False)) as client:
        work = {}
        for username in ("admin", "no-such-user", "admin", "nobody-at-all"):
            CountingHasher.verified = 0
            r = client.post(LOGIN, json={"username": username, "password": "not-the-password-1"})
            assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
            work[username] = CountingHasher.verified
    assert work == {"admin": 1, "no-such-user": 1, "nobody-at-all": 1}  # before: 0 for unknown usernames


def test_a_password_change_ends_every_other_session_and_a_reset_ends_them_all(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone, laptop = (login(server, "clerk", PASSWORD).json()["token"] for _ in range(2))

    def me(token: str) -> int:
        return httpx.get(server.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code

    change = {"current_password": PASSWORD, "new_password": "a fresh passphrase 7"}
    r = httpx.post(server.url + "/api/v1/auth/password", json=change, headers={"Authorization": f"Bearer {laptop}"})
    assert r.status_code == 204, r.text
    assert (me(laptop), me(phone)) == (200, 401)  # whoever held the old password's session is out
    assert login(server, "clerk", PASSWORD).status_code == 401
    assert login(server, "clerk", "a fresh passphrase 7").status_code == 200

    wrong = {"current_password": "not-it-at-all", "new_password": "another passphrase 8"}
    r = httpx.post(server.url + "/api/v1/auth/password", json=wrong, headers={"Authorization": f"Bearer {laptop}"})
    assert r.status_code == 403 and stored(server, "clerk").failed_logins == 1  # counts like a failed login

    for name, value in server.settings_env().items():  # `custodia admin set-password clerk` on this database
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    from custodia_cli.admin import set_password

    try:
        reset = set_password("clerk")
    finally:
        get_settings.cache_clear()
    assert reset["sessions_ended"] >= 2 and me(laptop) == 401
    assert login(server, "clerk", reset["password"]).status_code == 200


@pytest.mark.parametrize(
    "password", ["password123", "Password123!", "qwertyuiop", "1234567890", "iloveyou2024", "aaaaaaaaaaaa"]
)
def test_common_passwords_are_refused_with_a_reason(password: str, world) -> None:  # type: ignore[no-untyped-def]
    assert password_problem(password) is not None
    r = httpx.post(
        world.server.url + "/api/v1/users",
        headers=world.headers("sysadmin"),
        json={"username": "weak-one", "password": password, "role": "officer", "unit_id": 1},
    )
    assert r.status_code == 422 and ("common" in r.text or "different characters" in r.text), r.text


def test_uncommon_passwords_pass() -> None:
    for password in ("correct horse battery staple", "Kq8#mV2!xT9z", "杭州市场监管二〇二六年"):
        assert password_problem(password) is None
