from __future__ import annotations

import re

from sqlalchemy import Select, or_, select

from evidence_server.accounts.models import Role, User
from evidence_server.recordings.models import Recording


class RangeError(ValueError):
    pass


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """One HTTP byte range → (start, end) inclusive; RangeError when malformed or unsatisfiable. Pure."""
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise RangeError(f"malformed Range header {header!r}: want one range like bytes=0-1023")
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeError("unsatisfiable range")
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeError(f"range {header!r} is outside the {size} bytes of this recording")
    return start, end


def visible_to(user: User) -> Select[tuple[Recording]]:
    """Recordings a user may see: officers their own, unit roles their unit (case handlers also those of
    cases shared with them), supervisors all."""
    q = select(Recording)
    if user.sees_all_units:
        return q
    if Role(user.role) == Role.officer:
        return q.where(Recording.unit_id == user.unit_id, Recording.officer_no == (user.officer_no or "\x00"))
    if Role(user.role) == Role.case_handler:  # and the recordings of cases shared with them
        from evidence_server.cases.access import recording_shared_with

        return q.where(or_(Recording.unit_id == user.unit_id, recording_shared_with(user, Recording.id)))
    return q.where(Recording.unit_id == user.unit_id)
