"""The evidence-bearing fields of a row, as an audit entry records them and as the rows check reads them.

A feature that creates or changes an evidence-bearing row (a ledger entry, a case link, a legal hold, a
disposal) puts ``fields_of(row, FIELDS)`` into the details of the audit entry it writes, so the log holds
every field in full and ``evidence_server.binding`` can later name the one that was edited in the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from custodia_wire.auditlog import entry_time


def plain(value: Any) -> Any:
    """A column value as JSON: UTC timestamps in the log's own form, dates ISO, the rest as they are."""
    if isinstance(value, datetime):
        return entry_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def fields_of(row: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{name: plain(row.name)}`` for each evidence-bearing field."""
    return {name: plain(getattr(row, name)) for name in names}
