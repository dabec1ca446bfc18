"""Soak only (scripts/soak sets CUSTODIA_SOAK=1): a volume of 100,000 tiny files goes all the way.

The default suite checks that such a volume is indexed and registered in time
(tests/faults/test_hostile_volumes.py); here every file is copied, uploaded, receipted and wiped,
with the agent killed a few times on the way, and the server must hold each exactly once.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest

from custodia_wire.fingerprint import of_bytes
from tests.faults.conftest import CAMPAIGNS, SEED
from tests.faults.harness import OFFICER, SERIAL, Campaign, Site, finish

pytestmark = pytest.mark.skipif(os.environ.get("CUSTODIA_SOAK") != "1", reason="soak only (scripts/soak)")
FILES = int(os.environ.get("CUSTODIA_SOAK_FILES", "100000"))


def test_a_volume_of_tiny_files_goes_all_the_way_through_kills(site: Callable[..., Site]) -> None:
    s = site()
    rng = random.Random(SEED + 7)
    for n in range(FILES):
        rel = f"DCIM/2026{n // 1000:04d}/{SERIAL}_{OFFICER}_20261120093000_{n:06d}.MP4"
        path = s.recorder.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = n.to_bytes(4, "big") + rng.randbytes(rng.randint(0, 60))  # distinct bytes: one recording each
        path.write_bytes(data)
        s.recorder.written[rel] = of_bytes(data).blake3
    s.settle_timeout = 6 * 3600
    report = Campaign(f"{FILES} tiny files", SEED + 7)
    started = time.monotonic()
    for _ in range(3):  # a few kills while the big docking runs
        pid = s.run_agent(progress_interval=5.0)
        time.sleep(rng.uniform(30, 120))
        if s.forks.exit_code(pid) is None:
            s.forks.kill(pid)
            report.injected["random"] += 1
    finish(s, report)
    CAMPAIGNS.append(report)
    print(report.line(), f"in {time.monotonic() - started:.0f} s")
    assert report.violations == [] and report.problems == [], (report.violations + report.problems)[:20]
