"""Reading recordings: HTTP byte ranges. (Who may see which recording: ``cases.access.recordings_visible``.)"""

from __future__ import annotations

import re


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
