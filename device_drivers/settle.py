"""Waiting for a volume to settle: a recorder's files appear over seconds, not all at once.

A mount point (or a folder copied into a dock) shows up before its files: the first look at it
can find no data folder and no file name carrying a serial. The station therefore looks only once
the tree has stopped changing (same names, sizes and mtimes for ``quiet`` seconds), and after a
docking it compares the tree again to notice files that arrived while it was copying.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: A tree with more entries than this is snapshotted only this far (a recorder holds hundreds, not millions).
MAX_ENTRIES = 100_000

Snapshot = frozenset[tuple[str, int, int]]


def snapshot(root: Path, max_entries: int = MAX_ENTRIES) -> Snapshot | None:
    """``(relative path, size, mtime_ns)`` of every file (and link, node…) under ``root``, never following a symlink.

    None when ``root`` is gone or unreadable. Hidden work files (``.name``) are left out: they are
    what a writer moves into place, not what a recorder holds.
    """
    found: set[tuple[str, int, int]] = set()
    stack = [""]
    try:
        os.stat(root, follow_symlinks=False)
    except OSError:
        return None
    while stack and len(found) < max_entries:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as entries:
                for e in entries:
                    if e.name.startswith("."):
                        continue
                    path = f"{rel}/{e.name}" if rel else e.name
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.is_dir(follow_symlinks=False):
                        stack.append(path)
                    else:
                        found.add((path, st.st_size, st.st_mtime_ns))
        except OSError:
            if not rel:
                return None
    return frozenset(found)


def arrived(before: Snapshot | None, after: Snapshot | None) -> set[str]:
    """Paths in ``after`` that are new or changed since ``before`` (removals ignored). Pure."""
    if after is None:
        return set()
    return {path for path, _, _ in after - (before or frozenset())}


@dataclass(frozen=True)
class Settled:
    """The outcome of waiting: the last snapshot, whether it held still long enough, how long it took."""

    snapshot: Snapshot | None
    quiet: bool
    waited: float

    @property
    def gone(self) -> bool:
        return self.snapshot is None


def wait_until_settled(
    root: Path,
    *,
    quiet: float,
    timeout: float,
    stop: threading.Event | None = None,
    poll: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Settled:
    """Wait until ``root``'s tree has not changed for ``quiet`` seconds (or ``timeout``, stop, removal).

    An empty tree is not settled: a recorder volume is never empty when it is first mounted, so an
    empty folder waits for its files until the timeout.
    """
    stop = stop or threading.Event()
    step = poll if poll is not None else max(0.05, min(0.5, quiet / 4))
    start = clock()
    last = snapshot(root)
    since = start
    while True:
        now = clock()
        if last is None:
            return Settled(None, False, now - start)
        if last and now - since >= quiet:
            return Settled(last, True, now - start)
        if now - start >= timeout or stop.wait(step):
            return Settled(last, False, clock() - start)
        current = snapshot(root)
        if current != last:
            last, since = current, clock()
