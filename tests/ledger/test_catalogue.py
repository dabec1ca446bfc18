"""Every key the ledger pages build at run time (statuses, kinds, checks, refusals…) is in both catalogues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evidence_server.ledger import rules, service
from evidence_server.ledger.rules import CORRECTABLE, Condition, Kind, Status
from web_ui import i18n

LEDGER = Path(service.__file__).parent


def refusal_codes() -> set[str]:
    codes: set[str] = set()
    for source in [*LEDGER.glob("*.py"), Path(i18n.__file__).parent / "pages" / "ledger.py"]:
        codes |= set(re.findall(r'RuleError\(\s*"([a-z_]+)"', source.read_text(encoding="utf-8")))
    codes |= {f"device_{s.value}" for s in Status if s != Status.available}
    return codes


def dynamic_keys() -> set[str]:
    keys = {f"device_status.{s.value}" for s in Status} | {f"entry_kind.{k.value}" for k in Kind}
    keys |= {f"condition.{c.value}" for c in Condition} | {f"field.{f}" for f in CORRECTABLE}
    failures = rules.precheck(rules.Readings(), rules.Thresholds(0, 0, 0)) + rules.precheck(
        rules.Readings(-1, -1, 99, fault_found=True), rules.Thresholds(0, 0, 0)
    )
    keys |= {f"check.{f}" for f in failures}
    keys |= {f"clock_source.{s}" for s in ("dock", "reading", "checkout")}
    keys |= {f"lend_state.{s}" for s in ("pending", "approved", "rejected")}
    keys |= {
        f"done.{d}" for d in ("register", "checkout", "return", "fault", "restored", "requested", "approve", "reject")
    }
    keys |= {f"form.{m}_title" for m in ("checkout", "return", "fault", "lend")}
    return keys | {f"ledger_err.{code}" for code in refusal_codes()}


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES))
def test_dynamic_keys_are_in_the_catalogue(lang: str) -> None:
    assert len(refusal_codes()) > 25
    assert sorted(dynamic_keys() - set(i18n.catalogue(lang))) == []
