"""Rule 9 on plain audit entries: downloads and exports outside the user's cases, bulk downloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evidence_server.compliance.access import AccessEvent, Holdings, UserInfo, access_findings
from evidence_server.compliance.facts import Thresholds

TH = Thresholds(bulk_download_threshold=3)
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Beijing time
HANDLER = UserInfo(1, unit_id=1, role="case_handler", username="handler")
OFFICER = UserInfo(2, unit_id=1, role="officer", officer_no="102345", username="officer1")
USERS = {u.user_id: u for u in (HANDLER, OFFICER)}
HOLD = Holdings(
    recording_cases={10: frozenset({100}), 11: frozenset({200}), 12: frozenset({300})},
    recording_officer={10: "102345", 11: "102345", 12: "202345", 13: "102345"},
    case_unit={100: 1, 200: 2, 300: 2},
    case_shared_users={300: frozenset({1})},
)


def download(seq: int, user: int, rid: int, at: datetime = T0) -> AccessEvent:
    return AccessEvent(seq, at, user, "recording.download", recording_id=rid)


@pytest.mark.parametrize(
    "user, rid, outside",
    [
        (1, 10, False),  # a case of the handler's unit
        (1, 11, True),  # another unit's case, not shared
        (1, 12, False),  # another unit's case shared with the handler
        (1, 13, True),  # in no case at all
        (2, 13, False),  # the officer's own recording
        (2, 12, True),  # someone else's, in another unit's case
    ],
)
def test_downloads_outside_the_users_own_cases(user: int, rid: int, outside: bool) -> None:
    got = access_findings([download(1, user, rid)], USERS, HOLD, TH)
    assert [f.kind.value for f in got] == (["access_outside_cases"] if outside else [])


def test_exports_of_a_case_not_ones_own() -> None:
    events = [
        AccessEvent(1, T0, 1, "case.export", case_id=200, recordings=2),
        AccessEvent(2, T0, 1, "case.export", case_id=300, recordings=1),
    ]
    got = access_findings(events, USERS, HOLD, TH)
    assert [(f.kind.value, [e["case_id"] for e in f.evidence["events"]]) for f in got] == [
        ("access_outside_cases", [200])
    ]


@pytest.mark.parametrize("n, bulk", [(3, False), (4, True)])
def test_bulk_downloads_beyond_the_threshold_per_local_day(n: int, bulk: bool) -> None:
    events = [download(i, 1, 10, T0 + timedelta(minutes=i)) for i in range(n)]
    got = access_findings(events, USERS, HOLD, TH)
    assert [f.kind.value for f in got] == (["bulk_download"] if bulk else [])
    if bulk:
        assert got[0].key == "bulk:1:2026-03-02" and got[0].evidence["recordings"] == n


def test_exports_of_ones_own_cases_are_no_bulk_copy_but_exports_of_others_are() -> None:
    own = [AccessEvent(i, T0, 1, "case.export", case_id=300, recordings=2) for i in range(5)]  # 10 recordings
    assert access_findings(own, USERS, HOLD, TH) == []
    others = [AccessEvent(i, T0, 1, "case.export", case_id=200, recordings=2) for i in range(2)]
    got = access_findings(own + others + [download(9, 1, 10)], USERS, HOLD, TH)
    bulk = [f for f in got if f.kind.value == "bulk_download"]
    assert len(bulk) == 1 and bulk[0].evidence["recordings"] == 5  # the two foreign exports and the download
    assert {e["case_id"] for e in bulk[0].evidence["events"]} == {200, None}


def test_the_day_is_the_local_day_and_exempt_roles_are_skipped() -> None:
    # 15:30 UTC and 16:30 UTC fall on two Beijing days (23:30 and 00:30)
    evening = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    events = [download(i, 1, 10, evening) for i in range(3)] + [download(9, 1, 10, evening + timedelta(hours=1))]
    assert access_findings(events, USERS, HOLD, TH) == []
    exempt = Thresholds(bulk_download_threshold=0, access_exempt_roles=("case_handler",))
    assert access_findings(events, USERS, HOLD, exempt) == []
