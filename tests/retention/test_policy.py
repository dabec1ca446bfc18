"""The retention rules as pure functions: no database, no disk, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evidence_server.retention.rules import (
    Basis,
    CaseFacts,
    Change,
    Decision,
    Hold,
    RecordingFacts,
    RetentionPolicy,
    Subject,
    Target,
    add_months,
    change,
    decide,
    due_list,
    holds_on,
    is_due,
    load_policy,
    lock_needs_renewal,
    lock_until,
    retain_until,
    shortened_by,
)

POLICY = RetentionPolicy(unlinked_months=6, closed_case_years=3)
REC = datetime(2026, 1, 31, 2, 0, tzinfo=UTC)
CLOSED = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def facts(*cases: CaseFacts, **kw: object) -> RecordingFacts:
    return RecordingFacts(1, REC, cases, **kw)  # type: ignore[arg-type]


def test_unlinked_footage_is_kept_six_months_to_the_calendar_day() -> None:
    assert retain_until(facts(), POLICY) == datetime(2026, 7, 31, 2, 0, tzinfo=UTC)
    # the 31st of a month becomes the last day of a shorter one, leap years included
    assert add_months(datetime(2027, 8, 31, tzinfo=UTC), 6) == datetime(2028, 2, 29, tzinfo=UTC)
    assert decide(facts(), POLICY).basis == Basis.unlinked


def test_is_due_exactly_at_the_boundary_and_not_a_microsecond_before() -> None:
    until = retain_until(facts(), POLICY)
    assert until is not None
    assert is_due(until, until)
    assert not is_due(until, until - timedelta(microseconds=1))
    assert not is_due(until, until + timedelta(days=1), held=True)
    assert not is_due(until, until + timedelta(days=1), disposed=True)
    assert not is_due(None, datetime(2999, 1, 1, tzinfo=UTC))  # kept for good is never due


def test_footage_of_a_case_is_kept_while_open_and_n_years_after_it_closes() -> None:
    open_case = CaseFacts(7, None)
    assert decide(facts(open_case), POLICY) == Decision(None, Basis.case_open, 7)
    closed = CaseFacts(7, CLOSED)
    assert decide(facts(closed), POLICY) == Decision(datetime(2029, 3, 1, 16, 0, tzinfo=UTC), Basis.case_closed, 7)
    # two cases: the one still open wins; two closed: the later closing wins
    assert retain_until(facts(closed, CaseFacts(8, None)), POLICY) is None
    later = CaseFacts(8, CLOSED + timedelta(days=400))
    assert decide(facts(closed, later), POLICY).case_id == 8


def test_a_closed_case_never_keeps_footage_less_than_the_unlinked_minimum() -> None:
    long_ago = CaseFacts(7, REC - timedelta(days=3 * 366))
    assert decide(facts(long_ago), POLICY).basis == Basis.unlinked


@pytest.mark.parametrize("kind", ["major", "obstruction", "mass_incident"])
def test_permanent_kinds_are_kept_for_good_even_when_closed(kind: str) -> None:
    d = decide(facts(CaseFacts(7, CLOSED, frozenset({kind}))), POLICY)
    assert d == Decision(None, Basis.permanent_kind, 7)
    # a kind the policy does not keep for good changes nothing
    assert decide(facts(CaseFacts(7, CLOSED, frozenset({"minor"}))), POLICY).basis == Basis.case_closed
    assert (
        decide(facts(CaseFacts(7, CLOSED, frozenset({kind}))), RetentionPolicy(permanent_kinds=())).basis
        == Basis.case_closed
    )


def test_a_reopened_case_extends_and_closing_it_again_fixes_the_date() -> None:
    closed = decide(facts(CaseFacts(7, CLOSED)), POLICY)
    reopened = decide(facts(CaseFacts(7, None)), POLICY)
    assert change(closed, reopened) == Change.extend
    closed_again = decide(facts(CaseFacts(7, CLOSED + timedelta(days=90))), POLICY)
    assert change(reopened, closed_again) == Change.fix
    # closing it with an earlier date than before is a shortening once a date was fixed
    assert change(closed_again, closed) == Change.shorten


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, Decision(REC, Basis.unlinked), Change.extend),
        (Decision(REC, Basis.unlinked), Decision(REC, Basis.unlinked), Change.same),
        (Decision(REC, Basis.unlinked), Decision(REC + timedelta(days=1), Basis.extended), Change.extend),
        (Decision(REC, Basis.unlinked), Decision(REC - timedelta(days=1), Basis.unlinked), Change.shorten),
        (Decision(None, Basis.case_open, 7), Decision(REC, Basis.unlinked), Change.shorten),  # unlinked from it
        (Decision(None, Basis.permanent_kind, 7), Decision(REC, Basis.case_closed, 7), Change.shorten),
        (Decision(None, Basis.permanent_kind, 7), Decision(None, Basis.case_open, 7), Change.shorten),
        (Decision(None, Basis.case_open, 7), Decision(None, Basis.permanent_kind, 7), Change.extend),
        (Decision(None, Basis.extended), Decision(None, Basis.permanent_kind, 3), Change.same),
    ],
)
def test_what_a_change_does(old: Decision | None, new: Decision, expected: Change) -> None:
    assert change(old, new) == expected


def test_a_persons_extension_only_ever_lengthens() -> None:
    later = REC + timedelta(days=3650)
    assert decide(facts(extended_until=later), POLICY) == Decision(later, Basis.extended)
    assert decide(facts(extended_until=REC), POLICY).basis == Basis.unlinked  # shorter than the policy: ignored
    assert retain_until(facts(extended_for_good=True), POLICY) is None


def test_policy_bounds_and_unknown_keys_are_refused() -> None:
    assert load_policy({}) == RetentionPolicy()
    for bad, word in [
        ({"unlinked_months": 5}, "unlinked_months"),
        ({"closed_case_years": 0}, "closed_case_years"),
        ({"closed_case_years": 101}, "closed_case_years"),
        ({"keep_forever": True}, "keep_forever"),
        ({"permanent_kinds": ["Major Cases"]}, "permanent_kinds"),
        ({"lock_horizon_days": 1}, "lock_horizon_days"),
    ]:
        with pytest.raises(ValueError, match=word):
            load_policy(bad)


def test_which_policy_changes_shorten() -> None:
    old = RetentionPolicy()
    assert shortened_by(old, RetentionPolicy(unlinked_months=12, closed_case_years=5)) == []
    assert shortened_by(old, RetentionPolicy(closed_case_years=1, permanent_kinds=("major",))) == [
        "closed_case_years",
        "permanent_kinds",
    ]


def test_worm_lock_follows_the_date_or_rolls_ahead_and_only_moves_later() -> None:
    now = REC
    dated = Decision(REC + timedelta(days=900), Basis.case_closed, 7)
    assert lock_until(dated, now, POLICY) == dated.until
    rolling = lock_until(Decision(None, Basis.permanent_kind, 7), now, POLICY)
    assert rolling == now + timedelta(days=POLICY.lock_horizon_days)
    assert lock_needs_renewal(None, rolling, now, POLICY)
    assert not lock_needs_renewal(rolling, rolling - timedelta(days=1), now, POLICY)  # never earlier
    # a rolling lock is renewed when less than half its horizon is left, not on every run
    assert not lock_needs_renewal(rolling, rolling + timedelta(days=1), now + timedelta(days=1), POLICY)
    assert lock_needs_renewal(rolling, rolling + timedelta(days=300), now + timedelta(days=300), POLICY)


def test_holds_cover_by_case_recording_officer_and_device() -> None:
    subject = Subject(5, "102345", "DSJ-A001", frozenset({7}))
    holds = [
        Hold(1, Target.case, "7"),
        Hold(2, Target.recording, "5"),
        Hold(3, Target.officer, "102345"),
        Hold(4, Target.device, "DSJ-A001"),
        Hold(5, Target.case, "8"),
        Hold(6, Target.recording, "55"),
        Hold(7, Target.officer, "999"),
        Hold(8, Target.device, "DSJ-A0010"),
    ]
    assert holds_on(subject, holds) == [1, 2, 3, 4]
    assert holds_on(Subject(6, None, "X", frozenset()), [Hold(3, Target.officer, "102345")]) == []


def test_due_list_splits_due_from_held() -> None:
    now = REC
    got = due_list([(1, now), (2, now - timedelta(days=1)), (3, now + timedelta(seconds=1)), (4, None)], {2}, now)
    assert [d.recording_id for d in got.due] == [1] and got.held == [2]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        decide(RecordingFacts(1, datetime(2026, 1, 1)), POLICY)  # noqa: DTZ001
