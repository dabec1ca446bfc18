"""The scored evaluation, small and with a fixed seed: every injected violation kind is found
(recall 1.0) and almost nothing else is flagged (precision ≥ 0.95), on SQLite and PostgreSQL.
``scripts/evaluate-compliance`` runs the larger period."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evaluation.replay import evaluate, table
from tests.evaluation.scenario import KINDS


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, ffmpeg: None) -> Path:
    return tmp_path_factory.mktemp("evaluation")  # the media templates are made once per module


def test_every_kind_is_found_and_almost_nothing_else(database_url: str, work: Path) -> None:
    rows, scenario = evaluate(database_url, work, seed=7, days=7, devices_per_family=3, per_kind=2)
    print(table(rows))
    by_kind = {r.kind: r for r in rows}
    assert {i.kind for i in scenario.injected} == set(KINDS)
    for r in rows:
        if r.injected:
            assert r.recall == 1.0, table(rows)
        if r.flagged:
            assert r.precision is not None and r.precision >= 0.95, table(rows)
    assert by_kind["suspected_edit"].injected == 5  # trim, re-encode, remux, metadata rewrite, concatenation
