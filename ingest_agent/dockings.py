"""Is a volume the same docking the station has already finished? (Issue 21, item 7.)

A station that restarts sees every recorder still in its dock again. Reading such a recorder as a new
docking opened an empty "0 / 0 done" transfer on the server, dated now, and a dock dated now can be
judged against whoever holds the device by then ("docked by someone other than the holder"). A
docking is the same one when all of these hold:

- the volume is the same mount (its mount ID in ``/proc/self/mountinfo``, which changes with every
  plug, and its root's device and inode; a folder dock: the folder's device and inode);
- the station has not seen it go away since (``Journal.note_undocked``);
- the earlier transfer of that volume is done, for the same device serial;
- nothing listed now is new or still to do: every file on the device is one that transfer receipted
  or found already held, with the same size and time, and, on a station that wipes, none of them is
  still waiting for its wipe.

Anything else is a docking to transfer (a failed file is tried again, a new file is brought in).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

#: File states of an earlier docking after which a file still on the device needs nothing more.
SETTLED = frozenset({"receipted", "held"})


def mount_id(root: Path, mountinfo: str | None = None) -> str | None:
    """The kernel's ID of the mount whose mount point is ``root`` (None when ``root`` is no mount point)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text("utf-8", "replace")
        except OSError:
            return None
    target = os.path.realpath(root)
    found = None
    for line in mountinfo.splitlines():  # the last mount on a point is the one in use
        parts = line.split()
        if len(parts) > 4 and _unescape(parts[4]) == target:
            found = parts[0]
    return found


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def volume_identity(root: str | Path) -> str | None:
    """A name for this docking of the volume at ``root``: mount ID, device and inode; None if unreadable."""
    path = Path(root)
    try:
        st = path.stat()
    except OSError:
        return None
    return f"mnt:{mount_id(path) or '-'}:dev:{st.st_dev}:ino:{st.st_ino}"


def nothing_new(
    earlier_files: Mapping[tuple[str, int, str], str], listed: Iterable[tuple[str, int, str]], *, wipes: bool
) -> bool:
    """True when every file listed now was settled by the earlier docking (pure).

    ``earlier_files`` maps (path, size, mtime) to the state the earlier docking left it in; ``listed``
    are the (path, size, mtime) on the device now. On a station that wipes, a receipted file still on
    the device is owed its wipe, so the docking is not finished.
    """
    for key in listed:
        state = earlier_files.get(key)
        if state not in SETTLED or (wipes and state == "receipted"):
            return False
    return True
