"""kill -9 of the agent and of the server, PostgreSQL crash-restarted: nothing lost, nothing doubled.

After every fault: no device file is gone without a signed receipt for it. After recovery (the agent
run again undisturbed): every recording ever written is on the server exactly once, its stored bytes
have its fingerprint, the device is empty and so is the spool. The RNG is seeded (CUSTODIA_FAULT_SEED,
printed with the tallies); scripts/soak runs the same campaigns with bigger numbers.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable

import pytest

from evidence_server.dbadmin import upgrade
from tests.faults.conftest import CAMPAIGNS, SEED, PrivatePostgres
from tests.faults.harness import Campaign, Site, agent_kill_campaign, finish, server_kill_campaign

AGENT_KILLS = int(os.environ.get("CUSTODIA_FAULT_AGENT_KILLS", "50"))
SERVER_KILLS = int(os.environ.get("CUSTODIA_FAULT_SERVER_KILLS", "12"))
PG_RESTARTS = int(os.environ.get("CUSTODIA_FAULT_PG_RESTARTS", "5"))


def assert_nothing_lost(report: Campaign) -> None:
    CAMPAIGNS.append(report)
    print(report.line())
    assert report.violations == [], "\n".join(report.violations)
    assert report.problems == [], "\n".join(report.problems)


@pytest.mark.slow
def test_agent_killed_at_every_phase_of_a_transfer(site: Callable[..., Site]) -> None:
    s = site()
    report = agent_kill_campaign(s, AGENT_KILLS, SEED)
    assert_nothing_lost(report)
    assert report.faults == AGENT_KILLS, f"only {report.faults} kills landed: {report.line()}"
    if AGENT_KILLS >= 30:  # every phase the issue names was hit, not only the easy ones
        assert {"before_copy", "after_copy", "mid_upload", "uploaded_unreceipted", "wiping"} <= set(report.injected)


@pytest.mark.slow
def test_server_killed_while_stations_upload(site: Callable[..., Site]) -> None:
    s = site()
    report = server_kill_campaign(s, SERVER_KILLS, SEED + 1)
    assert report.faults == SERVER_KILLS, f"only {report.faults} kills landed: {report.line()}"
    assert set(report.injected) <= {"mid_upload", "uploaded_unreceipted"}  # aimed, never between docks
    assert report.injected["mid_upload"] >= SERVER_KILLS // 2, report.line()  # most with a PATCH in flight
    assert_nothing_lost(report)


@pytest.mark.slow
def test_postgresql_crash_restarted_under_load(site: Callable[..., Site], private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database(f"custodia_faults_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    s = site(database_url=url)
    rng = random.Random(SEED + 2)
    report = Campaign("PostgreSQL restart (immediate, fast)", SEED + 2)
    patient = {"retry_attempts": 60, "retry_base_delay": 0.05, "retry_max_delay": 0.5, "upload_resume_attempts": 60}
    agent = None
    while report.faults < PG_RESTARTS:
        if agent is None or s.forks.exit_code(agent) is not None:
            s.recorder.record(rng.randint(2, 4))
            agent = s.run_agent(**patient)
        time.sleep(rng.uniform(0.1, 0.8))
        phases = s.probe.phases(set()) or {"between"}
        private_postgres.restart("immediate" if report.faults % 2 == 0 else "fast")
        report.injected[sorted(phases)[0]] += 1
    if agent is not None and s.forks.wait(agent, 300) is None:
        s.forks.kill(agent)
        report.problems.append("agent hung after the last restart")
    assert_nothing_lost(finish(s, report))
