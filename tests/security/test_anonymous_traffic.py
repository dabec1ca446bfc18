"""Anonymous traffic is bounded, and a client cannot choose its own address (issue 15, items 5 and 6).

500 bad requests used to add 500 audit entries in under two seconds; a client-written
X-Forwarded-For used to be believed, which beat the login throttle and put invented addresses in
the audit log.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from evidence_server.audit.models import AuditEvent
from evidence_server.audit.tally import close_windows
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.proxies import forwarded_client, networks
from tests.security.conftest import count
from tests.support.live import LiveServer

ANONYMOUS_FAILURES = {
    "auth.login_failed",
    "auth.login_throttled",
    "auth.login_locked",
    "auth.throttled",
    "station.enrol_failed",
}
#: a day's tally window (aligned at midnight UTC), so that a test's requests fall in one window: with the
#: default 300 s, a run across a five-minute mark opened a second window, whose first failures are entries too
ONE_WINDOW = {"CUSTODIA_AUDIT_TALLY_WINDOW_S": "86400"}


def entries(server: LiveServer, since: int = -1) -> list[AuditEvent]:
    ctx = ServerContext(server.settings())
    try:
        with ctx.sessionmaker() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.seq > since).order_by(AuditEvent.seq)))
    finally:
        ctx.close()


def close_all_windows(server: LiveServer) -> None:
    ctx = ServerContext(server.settings())
    try:
        with ctx.sessionmaker() as session:
            window_s = ctx.settings.audit_tally_window_s
            close_windows(session, window_s, utcnow() + timedelta(seconds=window_s))
            session.commit()
    finally:
        ctx.close()


def recorded_attempts(events: list[AuditEvent]) -> Counter[str]:
    """Requests the log accounts for, by action: an entry of its own is one, ``audit.repeated`` says how many."""
    seen: Counter[str] = Counter()
    for ev in events:
        if ev.action == "audit.repeated":
            seen[ev.details["action"]] += ev.details["count"]
        else:
            seen[ev.action] += 1
    return seen


def test_500_bad_requests_add_a_handful_of_entries_that_still_count_them_all(server_with: Any) -> None:
    server = server_with(**ONE_WINDOW)
    last = max((ev.seq for ev in entries(server)), default=-1)
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(250):
            statuses[client.post("/api/v1/stations/enrol", json={"code": f"not-a-code-{i:04d}"}).status_code] += 1
            r = client.post("/api/v1/auth/login", json={"username": "admin", "password": f"guess-{i:04d}-xx"})
            statuses[r.status_code] += 1
    count("anonymous bad requests", 500)
    assert statuses[429] > 0, statuses  # the client's budget ran out (before: no limit on enrolment)
    during = [ev for ev in entries(server, last) if ev.action in ANONYMOUS_FAILURES]
    assert len(during) <= len(ANONYMOUS_FAILURES), Counter(ev.action for ev in during)  # before: 500

    close_all_windows(server)
    events = [ev for ev in entries(server, last) if ev.action in ANONYMOUS_FAILURES | {"audit.repeated"}]
    assert len(events) <= 2 * len(ANONYMOUS_FAILURES)
    assert sum(recorded_attempts(events).values()) == 500  # the attack is in the log, counted
    repeated = [ev for ev in events if ev.action == "audit.repeated"]
    assert {ev.details["client_addr"] for ev in repeated} == {"127.0.0.1"}


def test_many_clients_share_one_count_past_the_cap_and_one_limit_for_everyone(server_with: Any) -> None:
    server = server_with(
        **ONE_WINDOW,
        CUSTODIA_TRUSTED_PROXIES="127.0.0.1",  # the test plays nginx, forwarding for 60 clients
        CUSTODIA_AUDIT_TALLY_MAX_KEYS="5",
        CUSTODIA_CREDENTIAL_ATTEMPTS_PER_MINUTE="40",
    )
    last = max((ev.seq for ev in entries(server)), default=-1)
    answers = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(60):
            client_addr = f"198.51.100.{i + 1}"
            r = client.post("/api/v1/stations/enrol", json={"code": "x" * 20}, headers={"X-Forwarded-For": client_addr})
            answers.append(r.status_code)
    assert answers[:40] == [403] * 40 and set(answers[40:]) == {429}  # 40 a minute for all clients together
    failed = [ev for ev in entries(server, last) if ev.action == "station.enrol_failed"]
    assert len(failed) == 6  # one for each of the first 5 clients, one for the count the other 35 share
    close_all_windows(server)
    tallied = recorded_attempts(entries(server, last))
    assert tallied["station.enrol_failed"] == 40 and tallied["auth.throttled"] == 20


def test_a_client_cannot_choose_its_address_without_a_trusted_proxy(server_with: Any) -> None:
    server = server_with()  # no trusted proxy: X-Forwarded-For is nobody's word
    last = max((ev.seq for ev in entries(server)), default=-1)
    answers = []
    for i in range(25):
        forged = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
        r = httpx.post(
            server.url + "/api/v1/auth/login",
            json={"username": "admin", "password": f"wrong-guess-{i:02d}"},
            headers=forged,
        )
        answers.append(r.status_code)
    assert answers[:20] == [401] * 19 + [423] or 429 in answers, answers  # the throttle holds for the real address
    assert 429 in answers  # before: each forged address had a budget of its own
    addresses = {ev.client_addr for ev in entries(server, last)}
    assert addresses == {"127.0.0.1"}, addresses  # before: the audit log recorded the invented addresses


def test_a_trusted_proxy_is_believed_from_the_right() -> None:
    nginx = networks(["127.0.0.1", "10.0.0.0/8"])
    # nginx appended the address it saw; what the client wrote is further left and is not believed
    assert forwarded_client("127.0.0.1", ["6.6.6.6, 198.51.100.7"], nginx) == "198.51.100.7"
    assert forwarded_client("127.0.0.1", ["198.51.100.7, 10.1.2.3"], nginx) == "198.51.100.7"  # two proxies
    assert forwarded_client("192.0.2.9", ["6.6.6.6"], nginx) == "192.0.2.9"  # not a proxy: its own address
    assert forwarded_client("127.0.0.1", ["not-an-address"], nginx) == "127.0.0.1"
    with pytest.raises(ValueError, match="may not trust every address"):
        Settings(trusted_proxies="*")


def test_deploy_files_trust_only_nginx() -> None:
    from tests.production.test_deploy_files import DEPLOY, env_file

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    nginx_addr = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    for name in ("server-1", "server-2"):
        env = compose["services"][name]["environment"]
        assert "FORWARDED_ALLOW_IPS" not in env
        assert Settings(trusted_proxies=env["CUSTODIA_TRUSTED_PROXIES"]).trusted_proxies == [f"{nginx_addr}/32"]
    systemd = (DEPLOY / "systemd" / "custodia-server@.service").read_text()
    assert 'CUSTODIA_TRUSTED_PROXIES=["127.0.0.1","::1"]' in systemd and "*" not in systemd.split("TRUSTED")[1][:40]
    assert env_file(DEPLOY / "custodia.env.example")["CUSTODIA_TRUSTED_PROXIES"] == '["127.0.0.1","::1"]'
    site = (DEPLOY / "nginx" / "custodia.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in site  # the client's own value never passes
