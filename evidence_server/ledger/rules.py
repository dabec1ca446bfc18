"""The ledger's rules as pure functions over plain data: checks, transitions, times, docks, corrections."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol


class Status(enum.StrEnum):
    unregistered = "unregistered"  # seen at a dock, not yet in the register
    available = "available"
    checked_out = "checked_out"
    in_repair = "in_repair"
    lost = "lost"
    retired = "retired"


class Kind(enum.StrEnum):
    register = "register"
    checkout = "checkout"
    lend = "lend"
    return_ = "return"
    fault = "fault"
    damage = "damage"
    loss = "loss"
    restored = "restored"  # back in service: repaired, or found again
    retire = "retire"
    correction = "correction"


class Condition(enum.StrEnum):
    good = "good"
    damaged = "damaged"
    faulty = "faulty"


HAND_OUT = frozenset({Kind.checkout, Kind.lend})
REPORTS = frozenset({Kind.fault, Kind.damage, Kind.loss})
#: fields a correction may change; state (who holds the device, its status) is changed by new entries only
CORRECTABLE = frozenset(
    {
        "occurred_at",
        "expected_return_at",
        "task_start_at",
        "task_end_at",
        "enforcement_matter",
        "case_number",
        "case_name",
        "condition",
        "description",
        "battery_percent",
        "storage_free_bytes",
        "clock_offset_s",
    }
)


class RuleError(Exception):
    """A rule refused an entry; ``code`` is stable (API clients and the page messages use it)."""

    def __init__(self, code: str, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.facts = code, message, facts


# --- pre-checkout checks (R3) -----------------------------------------------------------------


@dataclass(frozen=True)
class Readings:
    battery_percent: int | None = None
    storage_free_bytes: int | None = None
    clock_offset_s: float | None = None
    fault_found: bool = False


@dataclass(frozen=True)
class Thresholds:
    min_battery_percent: int
    min_free_storage_bytes: int
    max_clock_offset_seconds: float

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        return cls(settings.min_battery_percent, settings.min_free_storage_bytes, settings.max_clock_offset_seconds)


def precheck(readings: Readings, thresholds: Thresholds) -> list[str]:
    """The failed checks, as codes; an unknown value fails too (the device was not checked)."""
    failures = []
    if readings.battery_percent is None:
        failures.append("battery_unknown")
    elif readings.battery_percent < thresholds.min_battery_percent:
        failures.append("battery_low")
    if readings.storage_free_bytes is None:
        failures.append("storage_unknown")
    elif readings.storage_free_bytes < thresholds.min_free_storage_bytes:
        failures.append("storage_low")
    if readings.clock_offset_s is None:
        failures.append("clock_unknown")
    elif abs(readings.clock_offset_s) > thresholds.max_clock_offset_seconds:
        failures.append("clock_off")
    if readings.fault_found:
        failures.append("fault_found")
    return failures


def merge_readings(station: Readings | None, manual: Mapping[str, Any]) -> tuple[Readings, str]:
    """Readings for a checkout: the station's, with any value entered by hand taking precedence.

    Returns the readings and their source: ``station``, ``manual`` or ``mixed``.
    """
    fields = ("battery_percent", "storage_free_bytes", "clock_offset_s")
    given = {f for f in fields if manual.get(f) is not None}
    base = station or Readings()
    values = {f: manual[f] if f in given else getattr(base, f) for f in fields}
    fault = bool(manual.get("fault_found")) or bool(station and station.fault_found)
    if station is None:
        source = "manual"
    elif not given:
        source = "station"
    else:
        source = "manual" if given == set(fields) else "mixed"
    return Readings(fault_found=fault, **values), source


# --- the device's state, replayed from its entries --------------------------------------------


@dataclass(frozen=True)
class DeviceState:
    status: Status = Status.unregistered
    open_checkout: int | None = None  # the id of the checkout or lend entry the device is out on


def _refuse_unavailable(state: DeviceState) -> None:
    if state.status != Status.available:
        raise RuleError(f"device_{state.status.value}", f"the device is {state.status.value}, not available")


def next_state(
    state: DeviceState, kind: Kind, *, entry_id: int | None = None, condition: Condition | None = None
) -> DeviceState:
    """The device's state after an entry of ``kind``; RuleError when the entry is not allowed now."""
    s = state.status
    if kind == Kind.correction:
        return state
    if kind == Kind.register:
        if s != Status.unregistered:
            raise RuleError("already_registered", "the device is already in the register")
        return DeviceState(Status.available)
    if kind in HAND_OUT:
        _refuse_unavailable(state)
        return DeviceState(Status.checked_out, entry_id)
    if kind == Kind.return_:
        if state.open_checkout is None:
            raise RuleError("not_checked_out", "the device is not checked out")
        broken = condition in (Condition.damaged, Condition.faulty) or s == Status.in_repair
        return DeviceState(Status.in_repair if broken else Status.available)
    if s in (Status.unregistered, Status.retired):
        raise RuleError(f"device_{s.value}", f"the device is {s.value}")
    if kind in (Kind.fault, Kind.damage):
        if s == Status.lost:
            raise RuleError("device_lost", "the device is reported lost")
        return DeviceState(Status.in_repair, state.open_checkout)
    if kind == Kind.loss:
        if s == Status.lost:
            raise RuleError("device_lost", "the device is already reported lost")
        return DeviceState(Status.lost, state.open_checkout)
    if kind == Kind.restored:
        if s not in (Status.in_repair, Status.lost):
            raise RuleError("not_out_of_service", "the device is neither in repair nor lost")
        return DeviceState(Status.checked_out if state.open_checkout else Status.available, state.open_checkout)
    if kind == Kind.retire:
        if state.open_checkout is not None:
            raise RuleError("device_checked_out", "return the device before retiring it")
        return DeviceState(Status.retired)
    raise RuleError("bad_kind", f"unknown entry kind {kind!r}")


class EntryLike(Protocol):
    id: int
    kind: str
    condition: str | None


def replay(entries: Iterable[EntryLike]) -> DeviceState:
    """The device's state from its entries in ledger order (seq): the source of truth."""
    state = DeviceState()
    for e in entries:
        state = next_state(
            state, Kind(e.kind), entry_id=e.id, condition=Condition(e.condition) if e.condition else None
        )
    return state


# --- the two times of an entry ----------------------------------------------------------------

FUTURE_SKEW = timedelta(minutes=5)


def entry_time(
    occurred_at: datetime | None,
    recorded_at: datetime,
    *,
    last_occurred_at: datetime | None,
    grace: timedelta,
    may_backdate: bool,
) -> tuple[datetime, bool]:
    """When the entry happened and whether it is a late entry (recorded after the fact).

    A device's entries are in the order they happened: an entry cannot precede the device's last one.
    """
    occurred = occurred_at or recorded_at
    if occurred.tzinfo is None:
        raise RuleError("naive_time", "the time needs a time zone")
    if occurred > recorded_at + FUTURE_SKEW:
        raise RuleError("in_future", "the entry cannot happen in the future")
    late = recorded_at - occurred > grace
    if late and not may_backdate:
        raise RuleError("backdating_not_allowed", "only an administrator may record an entry after the fact")
    if last_occurred_at is not None and occurred < last_occurred_at:
        raise RuleError(
            "out_of_order",
            "the entry would precede the device's last ledger entry",
            last_occurred_at=last_occurred_at.isoformat(),
        )
    return occurred, late


# --- docks --------------------------------------------------------------------------------------


class HandOutLike(Protocol):
    kind: str
    occurred_at: datetime
    officer_no: str | None


def holder_at(entries: Sequence[HandOutLike], at: datetime) -> HandOutLike | None:
    """The last checkout or lend that happened at or before ``at`` (the device's responsible holder)."""
    found = None
    for e in entries:
        if e.kind in HAND_OUT and e.occurred_at <= at and (found is None or e.occurred_at >= found.occurred_at):
            found = e
    return found


def dock_mismatch(holder: HandOutLike | None, docked_officer_no: str | None) -> str | None:
    """Why a dock is suspicious, or None: the docking officer does not hold the device."""
    if not docked_officer_no:
        return None  # the station could not tell who docked
    if holder is None:
        return "never_checked_out"
    if holder.officer_no != docked_officer_no:
        return "other_holder"
    return None


# --- corrections ----------------------------------------------------------------------------------


def check_corrections(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The corrected values, checked and in their JSON form (times as ISO text with zone)."""
    if not changes:
        raise RuleError("empty_correction", "a correction must change at least one field")
    unknown = sorted(set(changes) - CORRECTABLE)
    if unknown:
        raise RuleError("not_correctable", f"these fields cannot be corrected: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        try:
            if key in ("occurred_at", "expected_return_at", "task_start_at", "task_end_at"):
                moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
                if moment.tzinfo is None:
                    raise ValueError("no time zone")
                out[key] = moment.isoformat()
            elif key == "condition":
                out[key] = Condition(value).value
            elif key in ("battery_percent", "storage_free_bytes"):
                out[key] = None if value is None else int(value)
            elif key == "clock_offset_s":
                out[key] = None if value is None else float(value)
            else:
                out[key] = None if value is None else str(value).strip()[:500] or None
        except (TypeError, ValueError) as exc:
            raise RuleError("bad_correction", f"{key}: {exc}") from exc
    return out


def effective(values: Mapping[str, Any], corrections: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """An entry's values with its corrections applied, oldest first."""
    out = dict(values)
    for change in corrections:
        out.update({k: v for k, v in change.items() if k in CORRECTABLE})
    return out
