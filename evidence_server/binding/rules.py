"""What an audit entry says of a row, folded in log order, and where the row differs. Pure.

A row is evidence when a court relies on it (a recording's digests, a ledger entry, a case link, a
hold, a disposal). The log is signed and checked (``evidence_server.audit.fullcheck``); a row is
just a row. So the log is the truth, and a row that says otherwise was edited behind the log's back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: a key of what an entry says whose values are gathered over all entries (a sorted list), not replaced
GATHER = "+"
#: the value of a field an entry changed without recording to what: from then on the log says nothing of it
UNSAID = object()


@dataclass(frozen=True)
class NoneOr:
    """A value the row may hold, or may have let go of lawfully without an entry (a station's token in grace
    is cleared when its new one is first used): the row agrees if it holds None or this."""

    value: Any

    def __repr__(self) -> str:
        return f"{self.value!r} (or none)"


@dataclass(frozen=True)
class Said:
    """One field as the log has it: its value and the entry that said it last."""

    value: Any
    seq: int
    action: str


@dataclass(frozen=True)
class Finding:
    """A row, and the field of it, that differs from the log (field None: the whole row)."""

    table: str
    row_id: int | str  # a transfer's id is a UUID
    field: str | None
    row_value: Any = None
    logged_value: Any = None
    seq: int | None = None
    action: str | None = None
    source: str | None = None  # what the row is checked against, when not an entry of the log itself

    def message(self) -> str:
        where = f"{self.table} {self.row_id}"
        entry = f"log entry {self.seq} ({self.action})"
        if self.field is None and self.seq is None:
            return f"{where}: not in the log (no audit entry records it): inserted behind the log's back"
        if self.field is None:
            return f"{where}: missing from the database, though {entry} records it: deleted behind the log's back"
        row, logged = _show(self.row_value), _show(self.logged_value)
        if self.source is not None:
            return f"{where}: {self.field} is {row} in the row, but {self.source} gives {logged}"
        return f"{where}: {self.field} is {row} in the row, but {entry} recorded {logged}"


def _show(value: Any) -> str:
    return repr(value.isoformat() if isinstance(value, datetime) else value)  # NoneOr: "'x' (or none)"


def fold(statements: Iterable[tuple[int, str, Mapping[str, Any]]]) -> dict[str, Said]:
    """What the log says of one row, from (seq, action, fields) in log order: the latest value of each
    field wins; a field named ``name+`` gathers every value said into the sorted list ``name``; a field said
    ``UNSAID`` is no longer said (until an entry says it again)."""
    out: dict[str, Said] = {}
    gathered: dict[str, list[Any]] = {}
    for seq, action, fields in statements:
        for name, value in fields.items():
            if value is UNSAID:
                out.pop(name, None)
                continue
            if name.endswith(GATHER):
                name = name[: -len(GATHER)]
                gathered.setdefault(name, []).append(value)
                value = sorted(set(gathered[name]), key=repr)
            out[name] = Said(value, seq, action)
    return out


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def same(row_value: Any, logged: Any) -> bool:
    """Equal as evidence: timestamps compared as instants (the log has written them in two forms), numbers
    as numbers, lists in order."""
    if isinstance(logged, NoneOr):
        return row_value is None or same(row_value, logged.value)
    if isinstance(row_value, datetime) or isinstance(logged, datetime):
        a, b = _as_time(row_value), _as_time(logged)
        return a is not None and b is not None and a == b
    if isinstance(row_value, bool) or isinstance(logged, bool):
        return row_value is logged
    if isinstance(row_value, list | tuple) and isinstance(logged, list | tuple):
        return len(row_value) == len(logged) and all(same(a, b) for a, b in zip(row_value, logged, strict=True))
    return bool(row_value == logged)


def compare(table: str, row_id: int | str, row: Mapping[str, Any], said: Mapping[str, Said]) -> list[Finding]:
    """Every field the log has said that the row holds differently."""
    out = []
    for name, fact in said.items():
        if name in row and not same(row[name], fact.value):
            out.append(Finding(table, row_id, name, row[name], fact.value, fact.seq, fact.action))
    return out
