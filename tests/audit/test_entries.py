"""An entry's leaf bytes: the documented canonical JSON, whichever code path computes them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from custodia_wire import auditlog, documents, merkle

STRINGS = ["", "张三", 'quote " and \\ backslash', "tab\tnewline\ncontrol\x01", "emoji 🎥", "é", "/api/v1"]


def random_details(rnd: random.Random) -> object:
    return rnd.choice(
        [
            None,
            {},
            {
                "n": rnd.randint(-5, 10**12),
                "f": rnd.random(),
                "b": rnd.choice([True, False]),
                rnd.choice(STRINGS): [rnd.choice(STRINGS), None, {"z": 1, "a": [2.5]}],
            },
        ]
    )


def test_the_fast_leaf_hash_is_byte_for_byte_the_canonical_json() -> None:
    rnd = random.Random(6962)
    for seq in range(500):
        cols = (
            seq,
            datetime(2026, 11, 21, tzinfo=UTC) + timedelta(microseconds=rnd.randint(0, 10**12)),
            rnd.choice(["user", "station", "system"]),
            rnd.choice([None, rnd.randint(1, 10**6)]),
            rnd.choice([None, *STRINGS]),
            rnd.choice(STRINGS) or "x",
            rnd.choice([None, *STRINGS]),
            rnd.choice([None, *STRINGS]),
            rnd.choice([None, "127.0.0.1", "::1"]),
            random_details(rnd),
        )
        entry = auditlog.make_entry(*cols)
        canonical = documents.canonical_json({k: entry[k] for k in auditlog.LEAF_FIELDS})
        assert auditlog.entry_leaf_data(entry) == canonical
        assert auditlog.columns_leaf_hash(*cols) == merkle.leaf_hash(canonical)


def test_entry_times_are_utc_with_six_digits_whatever_the_zone_given() -> None:
    shanghai = timezone(timedelta(hours=8))
    ts = datetime(2026, 11, 22, 8, 0, 0, tzinfo=shanghai)
    assert auditlog.entry_time(ts) == "2026-11-22T00:00:00.000000Z"
    cols = (1, ts, "system", None, None, "x", None, None, None, None)
    assert auditlog.columns_leaf_hash(*cols) == auditlog.entry_leaf_hash(auditlog.make_entry(*cols))
    with pytest.raises(ValueError, match="naive"):
        auditlog.entry_time(datetime(2026, 1, 1))
