"""The ledger's rules as pure functions: no database, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from evidence_server.ledger.exports import Names, paper_rows
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import (
    Condition,
    DeviceState,
    Kind,
    Readings,
    RuleError,
    Status,
    Thresholds,
    check_corrections,
    dock_mismatch,
    effective,
    entry_time,
    holder_at,
    merge_readings,
    next_state,
    precheck,
    replay,
)

GIB = 1024**3
LIMITS = Thresholds(min_battery_percent=60, min_free_storage_bytes=4 * GIB, max_clock_offset_seconds=60)
NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("readings", "failures"),
    [
        (Readings(95, 20 * GIB, 1.5), []),
        (Readings(60, 4 * GIB, -60), []),  # the thresholds themselves pass
        (Readings(59, 20 * GIB, 0), ["battery_low"]),
        (Readings(95, 4 * GIB - 1, 0), ["storage_low"]),
        (Readings(95, 20 * GIB, 60.5), ["clock_off"]),
        (Readings(95, 20 * GIB, -3600), ["clock_off"]),
        (Readings(95, 20 * GIB, 0, fault_found=True), ["fault_found"]),
        (Readings(None, None, None), ["battery_unknown", "storage_unknown", "clock_unknown"]),
        (Readings(10, 0, 900, fault_found=True), ["battery_low", "storage_low", "clock_off", "fault_found"]),
    ],
)
def test_precheck(readings: Readings, failures: list[str]) -> None:
    assert precheck(readings, LIMITS) == failures


@pytest.mark.parametrize(
    ("station", "manual", "expected", "source"),
    [
        (None, {"battery_percent": 80, "storage_free_bytes": 5, "clock_offset_s": 2.0}, Readings(80, 5, 2.0), "manual"),
        (Readings(90, 7, 1.0), {}, Readings(90, 7, 1.0), "station"),
        (Readings(90, 7, 1.0), {"battery_percent": 50}, Readings(50, 7, 1.0), "mixed"),
        (Readings(90, 7, 1.0), {"fault_found": True}, Readings(90, 7, 1.0, True), "station"),
        (
            Readings(90, 7, None),
            {"battery_percent": 1, "storage_free_bytes": 2, "clock_offset_s": 3.0},
            Readings(1, 2, 3.0),
            "manual",
        ),
    ],
)
def test_station_readings_fill_what_was_not_entered(
    station: Readings | None, manual: dict[str, object], expected: Readings, source: str
) -> None:
    assert merge_readings(station, manual) == (expected, source)


AVAILABLE = DeviceState(Status.available)
OUT = DeviceState(Status.checked_out, 7)


@pytest.mark.parametrize(
    ("state", "kind", "condition", "after"),
    [
        (DeviceState(), Kind.register, None, AVAILABLE),
        (AVAILABLE, Kind.checkout, None, DeviceState(Status.checked_out, 99)),
        (AVAILABLE, Kind.lend, None, DeviceState(Status.checked_out, 99)),
        (OUT, Kind.return_, Condition.good, AVAILABLE),
        (OUT, Kind.return_, Condition.damaged, DeviceState(Status.in_repair)),
        (OUT, Kind.fault, None, DeviceState(Status.in_repair, 7)),
        (DeviceState(Status.in_repair, 7), Kind.return_, Condition.good, DeviceState(Status.in_repair)),
        (OUT, Kind.loss, None, DeviceState(Status.lost, 7)),
        (DeviceState(Status.lost, 7), Kind.return_, Condition.good, AVAILABLE),  # found and handed back
        (DeviceState(Status.lost), Kind.restored, None, AVAILABLE),
        (DeviceState(Status.in_repair, 7), Kind.restored, None, OUT),
        (AVAILABLE, Kind.retire, None, DeviceState(Status.retired)),
        (OUT, Kind.correction, None, OUT),
    ],
)
def test_transitions(state: DeviceState, kind: Kind, condition: Condition | None, after: DeviceState) -> None:
    assert next_state(state, kind, entry_id=99, condition=condition) == after


@pytest.mark.parametrize(
    ("state", "kind", "code"),
    [
        (OUT, Kind.checkout, "device_checked_out"),
        (OUT, Kind.lend, "device_checked_out"),
        (DeviceState(Status.lost), Kind.checkout, "device_lost"),
        (DeviceState(Status.in_repair), Kind.checkout, "device_in_repair"),
        (DeviceState(Status.retired), Kind.checkout, "device_retired"),
        (DeviceState(), Kind.checkout, "device_unregistered"),
        (AVAILABLE, Kind.return_, "not_checked_out"),
        (AVAILABLE, Kind.register, "already_registered"),
        (DeviceState(Status.lost), Kind.loss, "device_lost"),
        (DeviceState(Status.retired), Kind.fault, "device_retired"),
        (AVAILABLE, Kind.restored, "not_out_of_service"),
        (OUT, Kind.retire, "device_checked_out"),
    ],
)
def test_refused_transitions(state: DeviceState, kind: Kind, code: str) -> None:
    with pytest.raises(RuleError) as caught:
        next_state(state, kind, entry_id=1, condition=Condition.good)
    assert caught.value.code == code


@dataclass
class E:
    id: int
    kind: str
    condition: str | None = None
    occurred_at: datetime = NOW
    officer_no: str | None = None


def test_replay_gives_the_current_state() -> None:
    history = [
        E(1, "register"),
        E(2, "checkout"),
        E(3, "fault"),
        E(4, "return", "good"),
        E(5, "restored"),
        E(6, "checkout"),
        E(7, "correction"),
    ]
    assert replay(history) == DeviceState(Status.checked_out, 6)
    assert replay([]) == DeviceState(Status.unregistered)


GRACE = timedelta(minutes=30)


def test_entry_times() -> None:
    assert entry_time(None, NOW, last_occurred_at=None, grace=GRACE, may_backdate=False) == (NOW, False)
    assert entry_time(NOW - timedelta(minutes=10), NOW, last_occurred_at=None, grace=GRACE, may_backdate=False) == (
        NOW - timedelta(minutes=10),
        False,
    )
    earlier = NOW - timedelta(days=2)
    assert entry_time(earlier, NOW, last_occurred_at=None, grace=GRACE, may_backdate=True) == (earlier, True)


@pytest.mark.parametrize(
    ("occurred", "last", "may_backdate", "code"),
    [
        (NOW + timedelta(hours=1), None, True, "in_future"),
        (NOW - timedelta(days=2), None, False, "backdating_not_allowed"),
        (NOW - timedelta(hours=3), NOW - timedelta(hours=2), True, "out_of_order"),
        (datetime(2026, 11, 21, 2, 0), None, True, "naive_time"),
    ],
)
def test_refused_times(occurred: datetime, last: datetime | None, may_backdate: bool, code: str) -> None:
    with pytest.raises(RuleError) as caught:
        entry_time(occurred, NOW, last_occurred_at=last, grace=GRACE, may_backdate=may_backdate)
    assert caught.value.code == code


def test_who_held_the_device_at_a_dock() -> None:
    monday, tuesday = NOW - timedelta(days=2), NOW - timedelta(days=1)
    history = [
        E(1, "checkout", occurred_at=monday, officer_no="102345"),
        E(2, "return", occurred_at=monday),
        E(3, "checkout", occurred_at=tuesday, officer_no="102346"),
    ]
    assert getattr(holder_at(history, monday + timedelta(hours=1)), "officer_no", None) == "102345"
    assert getattr(holder_at(history, NOW), "officer_no", None) == "102346"
    assert holder_at(history, monday - timedelta(hours=1)) is None
    assert dock_mismatch(holder_at(history, NOW), "102346") is None
    assert dock_mismatch(holder_at(history, NOW), "102345") == "other_holder"
    assert dock_mismatch(None, "102345") == "never_checked_out"
    assert dock_mismatch(None, None) is None  # the station could not tell who docked


def test_corrections_are_checked_and_applied_in_order() -> None:
    assert check_corrections({"occurred_at": "2026-11-20T09:00:00+08:00", "condition": "damaged"}) == {
        "occurred_at": "2026-11-20T09:00:00+08:00",
        "condition": "damaged",
    }
    for bad, code in (
        ({}, "empty_correction"),
        ({"officer_id": 3}, "not_correctable"),
        ({"occurred_at": "2026-11-20T09:00:00"}, "bad_correction"),
        ({"condition": "shiny"}, "bad_correction"),
    ):
        with pytest.raises(RuleError) as caught:
            check_corrections(bad)
        assert caught.value.code == code
    assert effective({"case_number": "A", "case_name": "x"}, [{"case_number": "B"}, {"case_number": "C"}]) == {
        "case_number": "C",
        "case_name": "x",
    }


def _entry(**values: object) -> LedgerEntry:
    base: dict[str, object] = dict(
        device_id=1,
        unit_id=1,
        recorded_by_id=1,
        late=False,
        override=False,
        status_after="available",
        refers_to_id=None,
        corrections=None,
        battery_percent=None,
        storage_free_bytes=None,
        clock_offset_s=None,
        fault_found=None,
        readings_source=None,
        check_failures=None,
        enforcement_matter=None,
        case_number=None,
        case_name=None,
        expected_return_at=None,
        condition=None,
        description=None,
        officer_no=None,
        officer_name=None,
        borrower_unit_id=None,
        borrower_name=None,
        received_by_id=None,
        lend_request_id=None,
    )
    base.update(values)
    return LedgerEntry(**base)


def test_paper_rows_fold_returns_into_checkouts_and_apply_corrections() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    out_at = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    checkout = _entry(
        id=10,
        seq=2,
        kind="checkout",
        occurred_at=out_at,
        recorded_at=out_at,
        officer_no="102345",
        officer_name="张三",
        enforcement_matter="食品安全检查",
        expected_return_at=out_at + timedelta(hours=8),
        battery_percent=40,
        storage_free_bytes=20 * GIB,
        clock_offset_s=2.0,
        fault_found=False,
        readings_source="manual",
        check_failures=["battery_low"],
        override=True,
        override_reason="任务紧急",
        status_after="checked_out",
    )
    back = _entry(
        id=11,
        seq=3,
        kind="return",
        occurred_at=out_at + timedelta(hours=7),
        recorded_at=out_at + timedelta(days=1),
        late=True,
        refers_to_id=10,
        condition="good",
        received_by_id=2,
    )
    fix = _entry(
        id=12,
        seq=4,
        kind="correction",
        occurred_at=out_at + timedelta(days=1),
        recorded_at=out_at + timedelta(days=1),
        refers_to_id=10,
        corrections={"case_number": "市监案〔2026〕18号"},
        description="漏填案件编号",
    )
    names = Names(
        users={1: "王管理", 2: "周管理"},
        units={1: "第一所"},
        devices={1: Device(id=1, serial="DSJ0001", model="V9", unit_id=1)},
    )
    rows = paper_rows([fix, back, checkout], names, tz)
    assert [r.entry_id for r in rows] == [10, 12]
    row = rows[0]
    assert (row.date, row.device, row.officer) == ("2026-11-20", "DSJ0001（V9）", "张三（102345）")
    assert (row.time_out, row.time_in, row.condition) == ("2026-11-20 09:00", "2026-11-20 16:00", "完好")
    assert "电量 40%" in row.checks and "管理员放行：任务紧急" in row.checks and "电量不足" in row.checks
    assert row.signature == "领用：王管理；归还接收：周管理"
    assert "案件：（市监案〔2026〕18号）" in row.notes and "已更正，见第 12 条" in row.notes
    assert "归还补录（记录于 2026-11-21 09:00）" in row.notes and row.late
    assert rows[1].notes == "更正第 10 条：案件编号 改为 市监案〔2026〕18号。理由：漏填案件编号"
