"""The device rules on plain data: every rule at its edges (exactly 24 hours, time zones, the device's
clock offset, a segment across midnight). No database, no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from evidence_server.compliance import rules
from evidence_server.compliance.facts import (
    DeviceFacts,
    Dock,
    HandOut,
    Incident,
    Kind,
    Mismatch,
    Return,
    Segment,
    Thresholds,
    Vanished,
    sequence_of,
)

BJ = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST: a fixed offset is the same thing
TH = Thresholds(min_recorded_ratio=0.05)  # the short-footage rule has its own tests
DAY = datetime(2026, 3, 2, 9, 0, tzinfo=BJ)  # a Monday, 09:00 Beijing time


def at(hours: float = 0.0, minutes: float = 0.0, seconds: float = 0.0) -> datetime:
    return DAY + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def seg(
    n: int,
    start: datetime,
    length: float = 300.0,
    *,
    transferred: datetime | None = None,
    offset: float | None = None,
    held: bool = True,
    **kw: object,
) -> Segment:
    values: dict[str, object] = dict(
        device_serial="D1",
        path=f"DCIM/20260302/D1_102345_{start:%Y%m%d%H%M%S}_{n:04d}.MP4",
        size=1000 + n,
        start=start,
        end=start + timedelta(seconds=length),
        clock_offset_s=offset,
        recording_id=n if held else None,
        unit_id=1,
        officer_no="102345",
        duration_s=length if held else None,
        transferred_at=transferred,
        seen_at=transferred,
    )
    values.update(kw)
    return Segment(**values)  # type: ignore[arg-type]


def checkout(
    entry_id: int = 10,
    start: datetime = at(-0.5),
    back: datetime | None = at(3),
    *,
    expected: datetime | None = at(4),
    **kw: object,
) -> HandOut:
    return HandOut(
        entry_id=entry_id,
        device_serial="D1",
        unit_id=1,
        start=start,
        expected_return_at=expected,
        returned_at=back,
        return_entry_id=entry_id + 1 if back else None,
        officer_no="102345",
        enforcement_matter="食品安全检查",
        **kw,
    )  # type: ignore[arg-type]


def device(
    *segments: Segment, hand_outs: tuple[HandOut, ...] | None = None, docks: tuple[Dock, ...] = (), **kw: object
) -> DeviceFacts:
    outs = (checkout(),) if hand_outs is None else hand_outs
    returns = tuple(
        Return(h.return_entry_id, h.returned_at)
        for h in outs
        if h.returned_at is not None and h.return_entry_id is not None
    )
    return DeviceFacts(serial="D1", unit_id=1, segments=segments, hand_outs=outs, returns=returns, docks=docks, **kw)  # type: ignore[arg-type]


def kinds(facts: DeviceFacts, now: datetime, th: Thresholds = TH) -> list[str]:
    return sorted(f.kind.value for f in rules.device_findings(facts, th, now))


def found(facts: DeviceFacts, now: datetime, kind: Kind, th: Thresholds = TH) -> list:  # type: ignore[type-arg]
    return [f for f in rules.device_findings(facts, th, now) if f.kind == kind]


def a_session(transferred: datetime, n: int = 3, start: datetime = at(), **kw: object) -> list[Segment]:
    return [seg(i + 1, start + timedelta(seconds=300 * i), transferred=transferred, **kw) for i in range(n)]


LATER = at(24 * 30)  # long after everything


# --- 1, 2: the 24-hour rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delay, late", [(timedelta(hours=24), False), (timedelta(hours=24, seconds=1), True), (timedelta(hours=2), False)]
)
def test_late_transfer_is_more_than_24_hours_after_the_return(delay: timedelta, late: bool) -> None:
    facts = device(*a_session(at(3) + delay), docks=(Dock("t1", at(3) + delay),))
    assert (kinds(facts, LATER) == ["late_transfer"] * 3) is late
    if late:
        f = found(facts, LATER, Kind.late_transfer)[0]
        assert f.evidence["back_by"] == "return" and f.evidence["back_at"] == at(3).astimezone(UTC).isoformat()
        assert f.checkout_entry_id == 10 and f.officer_no == "102345"


def test_the_clock_starts_at_the_earlier_of_the_return_and_the_first_dock() -> None:
    # docked at 12:30, returned only at 16:00: the dock is the first evidence of being back
    out = (checkout(back=at(7), expected=at(8)),)
    facts = device(
        *a_session(at(3.5) + timedelta(hours=24, minutes=1)),
        hand_outs=out,
        docks=(Dock("t0", at(3.5)), Dock("t1", at(27.6))),
    )
    late = found(facts, LATER, Kind.late_transfer)
    assert len(late) == 3 and late[0].evidence["back_by"] == "dock"
    assert late[0].evidence["back_transfer_id"] == "t0"


def test_time_zones_do_not_change_the_verdict() -> None:
    utc_session = [
        replace(s, start=s.start.astimezone(UTC), end=s.end.astimezone(UTC))  # type: ignore[union-attr]
        for s in a_session(at(27, seconds=1))
    ]
    out = replace(checkout(), start=checkout().start.astimezone(UTC), returned_at=at(3).astimezone(UTC))
    for facts in (device(*a_session(at(27, seconds=1))), device(*utc_session, hand_outs=(out,))):
        assert kinds(facts, LATER) == ["late_transfer"] * 3


def test_the_device_clock_offset_is_corrected_before_the_rule() -> None:
    # the device runs 2 h fast: its file says 11:00-11:05 but it was 09:00-09:05; returned at 10:00
    fast = seg(1, at(2), offset=7200.0, transferred=at(36))
    facts = device(fast, hand_outs=(checkout(back=at(1), expected=at(2)),), docks=(Dock("t1", at(35)),))
    late = found(facts, LATER, Kind.late_transfer)
    assert len(late) == 1 and late[0].evidence["back_at"] == at(1).astimezone(UTC).isoformat()
    # uncorrected, the recording would seem to end after the return: the dock 35 h later would be the start
    naive = replace(fast, clock_offset_s=None)
    assert (
        found(
            device(naive, hand_outs=(checkout(back=at(1), expected=at(2)),), docks=(Dock("t1", at(35)),)),
            LATER,
            Kind.late_transfer,
        )
        == []
    )


def test_not_transferred_turns_into_late_when_the_recording_finally_arrives() -> None:
    listed = seg(1, at(), held=False, seen_at=at(3.5), seen_transfer_id="t1")
    facts = device(listed, docks=(Dock("t1", at(3.5)),))
    deadline = at(3.5 - 0.5 + 24)  # the return (12:00) was before the dock (12:30)
    assert found(facts, deadline, Kind.not_transferred) == []  # exactly at the deadline: not yet
    first = found(facts, deadline + timedelta(seconds=1), Kind.not_transferred)
    assert len(first) == 1 and first[0].evidence["seen_transfer_id"] == "t1"
    arrived = replace(listed, recording_id=1, transferred_at=at(50))
    then = found(device(arrived, docks=(Dock("t1", at(3.5)), Dock("t2", at(50)))), LATER, Kind.late_transfer)
    assert [f.key for f in then] == [f.key for f in first]


def test_no_return_known_falls_back_to_the_recording_end_plus_the_field_grace() -> None:
    facts = device(seg(1, at(), transferred=at(30)), hand_outs=())
    assert found(facts, LATER, Kind.late_transfer)[0].evidence["back_by"] == "recording_end"
    relaxed = Thresholds(field_grace_hours=48)
    assert found(facts, LATER, Kind.late_transfer, relaxed) == []


# --- 3: overdue ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "back, now, overdue",
    [
        (None, at(6), False),  # expected 13:00 + 2 h grace = 15:00; at 15:00 not yet
        (None, at(6, seconds=1), True),  # still out after the grace
        (at(6), LATER, False),  # returned exactly at the end of the grace
        (at(6, seconds=1), LATER, True),  # returned after it
    ],
)
def test_device_overdue_after_its_expected_return_plus_the_grace(
    back: datetime | None, now: datetime, overdue: bool
) -> None:
    facts = device(*a_session(at(3.5)), hand_outs=(checkout(back=back),), docks=(Dock("t1", at(3.5)),))
    got = found(facts, now, Kind.device_overdue)
    assert bool(got) is overdue
    if overdue:
        assert got[0].evidence["still_out"] is (back is None)


# --- 4: missing or short footage ---------------------------------------------------------------------


def test_a_returned_recorder_never_docked_is_not_transferred_at_the_deadline_not_missing() -> None:
    facts = device(hand_outs=(checkout(),), docks=(Dock("t0", at(-20)),))  # returned at(3), never docked since
    assert found(facts, at(27), Kind.not_transferred) == []  # the 24 hours are not over yet
    got = found(facts, at(27, seconds=1), Kind.not_transferred)
    assert len(got) == 1 and found(facts, LATER, Kind.missing_recording) == []
    ev = got[0].evidence
    assert got[0].at == at(27) and ev["deadline"] == rules.iso(at(27)) and ev["returned_at"] == rules.iso(at(3))
    assert ev["last_dock"]["transfer_id"] == "t0" and ev["checkout"]["entry_id"] == 10
    assert got[0].checkout_entry_id == 10 and got[0].device_serial == "D1"


def test_not_transferred_lists_the_files_an_earlier_index_knew() -> None:
    # docked mid-task (the index listed the first file, the upload never came), returned, never docked again
    out = checkout(start=at(-0.5), back=at(3))
    listed = seg(1, at(0.5), held=False, seen_at=at(1), seen_transfer_id="t1")
    facts = device(listed, hand_outs=(out,), docks=(Dock("t1", at(1)),))
    got = found(facts, LATER, Kind.not_transferred)
    assert len(got) == 1  # one flag for the checkout, not one more for the file
    flag = got[0]
    assert flag.evidence["last_dock"]["transfer_id"] == "t1"
    assert [f["path"] for f in flag.evidence["expected_files"]] == [listed.path]
    assert flag.evidence["expected_count"] == 1


def test_a_recorder_docked_in_time_holding_nothing_for_the_task_is_missing_recording() -> None:
    docked = device(hand_outs=(checkout(),), docks=(Dock("t1", at(3.2)),))
    got = found(docked, at(4), Kind.missing_recording)
    assert len(got) == 1 and got[0].evidence["docked"]["transfer_id"] == "t1"
    assert found(docked, LATER, Kind.not_transferred) == []


TASK = {"task_start": at(1), "task_end": at(2)}  # a 60-minute inspection inside a 3.5-hour checkout


@pytest.mark.parametrize("recorded_minutes, short", [(30, False), (29, True)])
def test_footage_much_shorter_than_the_task_is_flagged(recorded_minutes: int, short: bool) -> None:
    segments = [seg(i + 1, at(1) + timedelta(minutes=i), 60, transferred=at(4)) for i in range(recorded_minutes)]
    facts = device(*segments, hand_outs=(checkout(**TASK),), docks=(Dock("t1", at(3.5)),))
    got = found(facts, LATER, Kind.short_recording, Thresholds(min_recorded_ratio=0.5))
    assert bool(got) is short
    if got:
        ev = got[0].evidence
        assert ev["task_s"] == 3600 and ev["recorded_s"] == 29 * 60 and ev["task_start"] == rules.iso(at(1))
    assert found(facts, LATER, Kind.missing_recording) == []


def test_footage_is_never_judged_against_the_time_the_device_was_held() -> None:
    # the whole 60-minute task recorded, in a 3.5-hour checkout: not short
    segments = [seg(i + 1, at(1) + timedelta(minutes=10 * i), 600, transferred=at(4)) for i in range(6)]
    held = device(*segments, hand_outs=(checkout(**TASK),), docks=(Dock("t1", at(3.5)),))
    assert found(held, LATER, Kind.short_recording, Thresholds(min_recorded_ratio=0.9)) == []
    # no task times known: 10 minutes of footage in a 3.5-hour checkout raises no short-footage flag
    few = device(segments[0], docks=(Dock("t1", at(3.5)),))
    assert found(few, LATER, Kind.short_recording, Thresholds(min_recorded_ratio=0.9)) == []


def test_a_segment_across_midnight_counts_for_the_checkout_it_belongs_to() -> None:
    night = datetime(2026, 3, 2, 23, 50, tzinfo=BJ)
    out = checkout(start=night, back=night + timedelta(minutes=20), expected=night + timedelta(hours=1))
    across = [
        seg(1, night + timedelta(minutes=8), 300, transferred=night + timedelta(hours=1)),
        seg(
            1,
            night + timedelta(minutes=13),
            300,
            transferred=night + timedelta(hours=1),
            path="DCIM/20260303/D1_102345_20260303000300_0001.MP4",
        ),
    ]  # a new day numbers from 1 again
    facts = device(*across, hand_outs=(out,), docks=(Dock("t1", night + timedelta(minutes=30)),))
    assert kinds(facts, LATER, Thresholds(min_recorded_ratio=0.5)) == []


# --- 5: gaps and deleted segments --------------------------------------------------------------------


def test_a_missing_segment_number_is_a_gap() -> None:
    s = a_session(at(4), n=4)
    facts = device(s[0], s[1], s[3], docks=(Dock("t1", at(3.5)),))
    gaps = found(facts, LATER, Kind.segment_gap)
    assert len(gaps) == 1 and gaps[0].evidence["missing_seq"] == [3]
    assert gaps[0].evidence["before"]["recording_id"] == 2


def test_numbers_left_by_a_never_docked_checkout_are_blamed_on_that_checkout() -> None:
    # checkout 10 records 1-3 and docks; checkout 20 records 4-6 and never docks; checkout 30 records 7-9
    first = checkout(10, at(-0.5), at(1))
    lost = checkout(20, at(5), at(7), expected=at(8))
    third = checkout(30, at(10), at(12), expected=at(13))
    segs = [seg(i + 1, at(0) + timedelta(seconds=300 * i), transferred=at(1.2)) for i in range(3)]
    segs += [seg(i + 7, at(10.2) + timedelta(seconds=300 * i), transferred=at(12.2)) for i in range(3)]
    facts = device(*segs, hand_outs=(first, lost, third), docks=(Dock("t1", at(1.1)), Dock("t3", at(12.1))))
    (gap,) = found(facts, LATER, Kind.segment_gap)
    assert gap.evidence["missing_seq"] == [4, 5, 6] and gap.checkout_entry_id == 20


def test_a_gap_inside_one_session_is_blamed_on_the_checkout_that_held_it() -> None:
    # 1-2 full length in checkout 10; 3 missing; 4 starts a new session in checkout 20 right after
    first = checkout(10, at(-0.5), at(0.2), expected=at(1))
    second = checkout(20, at(0.25), at(3))
    segs = [seg(1, at(0)), seg(2, at(0) + timedelta(seconds=300)), seg(4, at(0.5))]
    facts = device(*segs, hand_outs=(first, second), docks=(Dock("t1", at(3.5)),))
    (gap,) = found(facts, LATER, Kind.segment_gap)
    assert gap.evidence["expected_at"] == rules.iso(at(0) + timedelta(seconds=600))
    assert gap.checkout_entry_id == 10


def test_a_number_the_station_refused_is_not_a_gap() -> None:
    s = a_session(at(4), n=3)
    facts = device(s[0], s[2], docks=(Dock("t1", at(3.5)),), known_paths=frozenset({s[1].path}))
    assert found(facts, LATER, Kind.segment_gap) == []


def test_a_full_length_segment_not_followed_at_once_breaks_the_session() -> None:
    s = a_session(at(4), n=4)
    # numbers intact, but the fourth starts 5 minutes after the third ended (the device cut it at full length)
    moved = replace(
        s[3],
        path=s[3].path,
        start=s[3].start + timedelta(minutes=5),  # type: ignore[operator]
        end=s[3].end + timedelta(minutes=5),
    )  # type: ignore[operator]
    facts = device(s[0], s[1], s[2], moved, docks=(Dock("t1", at(3.5)),))
    gaps = found(facts, LATER, Kind.timeline_gap)
    assert len(gaps) == 1 and gaps[0].evidence["reason"] == "break" and gaps[0].evidence["pause_s"] == 300


def test_a_new_session_after_a_pause_or_a_short_last_segment_is_no_gap() -> None:
    s = a_session(at(4), n=4)
    later = replace(s[3], start=s[3].start + timedelta(hours=1), end=s[3].end + timedelta(hours=1))  # type: ignore[operator]
    assert found(device(s[0], s[1], s[2], later, hand_outs=(checkout(back=at(3)),)), LATER, Kind.timeline_gap) == []
    short = replace(s[2], end=s[2].start + timedelta(seconds=100), duration_s=100.0)  # type: ignore[operator]
    resumed = replace(s[3], start=s[3].start + timedelta(minutes=5), end=s[3].end + timedelta(minutes=5))  # type: ignore[operator]
    assert found(device(s[0], s[1], short, resumed), LATER, Kind.timeline_gap) == []


def test_overlapping_segments_break_the_timeline() -> None:
    s = a_session(at(4), n=3)
    early = replace(s[2], start=s[2].start - timedelta(minutes=2), end=s[2].end - timedelta(minutes=2))  # type: ignore[operator]
    gaps = found(device(s[0], s[1], early), LATER, Kind.timeline_gap)
    assert len(gaps) == 1 and gaps[0].evidence["reason"] == "overlap"


def test_a_file_gone_from_the_device_without_transfer_is_a_deleted_segment_only() -> None:
    s = a_session(at(4), n=2)
    gone = seg(3, at(minutes=10), held=False, seen_at=at(3.5), seen_transfer_id="t1")
    facts = device(
        *s,
        gone,
        docks=(Dock("t1", at(3.5)), Dock("t2", at(5))),
        vanished=(Vanished(gone.path, gone.size, "t1", "t2", at(5), at(3.5)),),
    )
    assert kinds(facts, LATER) == ["vanished_file"]
    f = found(facts, LATER, Kind.vanished_file)[0]
    assert f.evidence["noticed_transfer_id"] == "t2" and f.checkout_entry_id == 10


# --- 6: signs of editing, fingerprints ------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, sign",
    [
        ({"encoder": "Lavf59.27.100"}, "editor_encoder"),
        ({"encoder": "HandBrake 1.6.1 2023010100"}, "editor_encoder"),
        ({"encoder": "Adobe Premiere Pro 2024"}, "editor_encoder"),
        ({"container_created_at": at(minutes=3)}, "creation_time_vs_name"),
        ({"size": 50_000}, "bitrate"),
        ({"width": 640, "height": 480}, "resolution"),
        ({"encoder": "Some Other Firmware"}, "foreign_encoder"),
    ],
)
def test_signs_of_editing_before_ingest(change: dict, sign: str) -> None:  # type: ignore[type-arg]
    th = Thresholds(
        min_recorded_ratio=0, family_resolutions={"zfy": ["1920x1080"]}, family_encoders={"zfy": r"^ZFY DSJ"}
    )
    base = dict(
        encoder="ZFY DSJ H.264 V1.0",
        width=1920,
        height=1080,
        codec="h264",
        container_created_at=None,
        family="zfy",
        size=10_000,
    )
    s = [
        seg(
            i + 1,
            at(minutes=5 * i),
            transferred=at(4),
            **{
                **base,  # type: ignore[arg-type]
                "container_created_at": at(minutes=5 * i),
            },
        )
        for i in range(5)
    ]
    s[2] = replace(s[2], **change)
    edits = found(device(*s), LATER, Kind.suspected_edit, th)
    assert [f.evidence["recording"]["recording_id"] for f in edits] == [3]
    assert [x["sign"] for x in edits[0].evidence["signs"]] == [sign]


def test_the_device_firmware_encoder_is_no_sign() -> None:
    s = [seg(i + 1, at(minutes=5 * i), transferred=at(4), encoder="ZFY-SIM DSJ H.264 V1.0") for i in range(3)]
    assert kinds(device(*s), LATER) == []


def test_a_failed_fingerprint_after_ingest_carries_its_incident() -> None:
    s = a_session(at(4), n=3)
    bad = replace(s[1], fixity_state="failed")
    incidents = (
        Incident(7, "fixity_mismatch", at(40), 2, None),
        Incident(8, "upload_digest_mismatch", at(3.6), None, "t1"),
    )
    facts = device(s[0], bad, s[2], incidents=incidents)
    got = sorted(rules.device_findings(facts, TH, LATER), key=lambda f: f.key)
    assert [(f.kind.value, f.key) for f in got] == [
        ("fixity_failure", "fixity:2"),
        ("integrity_incident", "incident:8"),
    ]
    assert got[0].evidence["incidents"][0]["incident_id"] == 7


# --- 7: clocks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset, flagged", [(5.0, False), (-5.0, False), (5.5, True), (45.0, True), (-45.0, True), (-3600.0, True)]
)
def test_clock_offset_beyond_tolerance_at_checkout_and_at_dock(offset: float, flagged: bool) -> None:
    facts = device(
        *a_session(at(4), offset=offset),
        hand_outs=(checkout(clock_offset_s=offset),),
        docks=(Dock("t1", at(3.5), clock_offset_s=offset),),
    )
    clock = sorted(f.key for f in found(facts, LATER, Kind.clock_off))
    assert clock == (["clock:checkout:10", "clock:dock:t1"] if flagged else [])


def test_the_clock_tolerance_defaults_to_seconds_and_is_configuration() -> None:
    from evidence_server.config import Settings

    assert Thresholds().clock_tolerance_s == Settings().max_clock_offset_seconds == 5.0
    assert Thresholds.from_settings(Settings(max_clock_offset_seconds=2.0)).clock_tolerance_s == 2.0
    # a good clock at checkout, drifted by the dock: the dock's offset is judged on its own
    facts = device(
        *a_session(at(4)), hand_outs=(checkout(clock_offset_s=1.0),), docks=(Dock("t1", at(3.5), clock_offset_s=45.0),)
    )
    (flag,) = found(facts, LATER, Kind.clock_off)
    assert flag.key == "clock:dock:t1" and flag.evidence["clock_offset_s"] == 45.0 and flag.checkout_entry_id == 10


# --- 8: use outside the ledger -----------------------------------------------------------------------------


def test_recordings_made_while_not_checked_out_one_flag_per_local_day() -> None:
    evening = [seg(i + 1, at(11) + timedelta(minutes=5 * i), transferred=at(12)) for i in range(2)]
    past_midnight = seg(3, at(15, minutes=10), transferred=at(16))  # 00:10 the next day, Beijing time
    within_tolerance = seg(4, at(3, minutes=4), transferred=at(4))  # 4 minutes after the return: still in it
    facts = device(*evening, past_midnight, within_tolerance, docks=(Dock("t1", at(11.5)), Dock("t2", at(15.5))))
    got = found(facts, LATER, Kind.used_outside_ledger)
    assert [(f.key, f.evidence["recording_count"]) for f in got] == [
        ("outside:D1:2026-03-02", 2),
        ("outside:D1:2026-03-03", 1),
    ]


def test_a_dock_by_someone_who_does_not_hold_the_device() -> None:
    facts = device(
        docks=(Dock("t9", at(3.5), officer_no="102346"),),
        mismatches=(Mismatch("t9", at(3.5), "102346", 10, "102345", "other_holder"),),
    )
    got = found(facts, at(3.6), Kind.dock_by_non_holder)
    assert len(got) == 1 and got[0].officer_no == "102346" and got[0].evidence["holder_officer_no"] == "102345"


@pytest.mark.parametrize(
    "out, reason",
    [
        (checkout(kind="lend", lend_request_id=3, lend_request_state="pending"), "no_approval"),
        (checkout(kind="lend"), "no_approval"),
        (checkout(officer_unit_id=2), "other_unit"),
        (checkout(kind="lend", lend_request_id=3, lend_request_state="approved"), None),
        (checkout(officer_unit_id=1), None),
    ],
)
def test_lending_without_approval(out: HandOut, reason: str | None) -> None:
    got = found(
        device(*a_session(at(4)), hand_outs=(out,), docks=(Dock("t1", at(3.5)),)), LATER, Kind.unapproved_lending
    )
    assert [f.evidence["reason"] for f in got] == ([reason] if reason else [])


# --- all together --------------------------------------------------------------------------------------


def test_a_clean_day_raises_nothing_and_keys_are_stable() -> None:
    facts = device(*a_session(at(3.6), n=40, start=at(-0.4)), docks=(Dock("t1", at(3.5)),))
    assert kinds(facts, LATER) == []
    broken = device(*a_session(at(30)), docks=(Dock("t1", at(30)),))
    assert [f.key for f in rules.device_findings(broken, TH, LATER)] == [
        f.key for f in rules.device_findings(broken, TH, LATER + timedelta(days=9))
    ]


def test_sequence_numbers_from_recorder_file_names() -> None:
    assert sequence_of("DCIM/20261120/DSJ0001_102345_20261120093000_0007.MP4") == 7
    assert sequence_of("20261120_093000_0012.mp4") == 12
    assert sequence_of("DCIM/clip.mp4") is None
