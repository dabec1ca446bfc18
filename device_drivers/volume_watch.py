"""Noticing recorders: volumes appearing under mount roots, and files that have stopped growing.

Each immediate subdirectory of a mount root (``/media/<user>``, ``/run/media/<user>``, a demo
folder) is a candidate volume. A watchdog observer on the roots triggers a debounced rescan; a
polling loop rescans anyway, and is the only mechanism when watchdog cannot start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Filesystem events on a root that can mean a volume came or went (not opens, reads or closes).
_RELEVANT_EVENTS = frozenset({"created", "deleted", "moved"})


def diff_volumes(before: set[Path], after: set[Path]) -> tuple[set[Path], set[Path]]:
    """``(added, removed)`` between two scans."""
    return after - before, before - after


def scan_volumes(roots: Iterable[Path], mounts_only: bool = False) -> set[Path]:
    """Immediate, non-hidden subdirectories (mount points only, if asked) of the roots that exist."""
    found: set[Path] = set()
    for root in roots:
        try:
            with os.scandir(root) as entries:
                for e in entries:
                    if e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
                        continue
                    path = Path(root) / e.name
                    if not mounts_only or os.path.ismount(path):
                        found.add(path)
        except OSError:
            continue  # a root that is missing or unreadable holds no volume right now
    return found


class VolumeWatcher:
    """Calls ``on_added(path)`` / ``on_removed(path)`` as volumes appear and vanish under ``roots``.

    Callbacks run on the watcher's thread, one at a time, removals before additions; they should
    return quickly. Volumes present at ``start()`` are reported as added unless ``report_existing``
    is False. ``mounts_only`` ignores plain directories (the empty mount-point dirs some desktops
    leave behind).
    """

    def __init__(
        self,
        roots: list[Path],
        on_added: Callable[[Path], None],
        on_removed: Callable[[Path], None],
        poll_interval: float = 1.0,
        debounce: float = 0.5,
        use_watchdog: bool = True,
        *,
        report_existing: bool = True,
        mounts_only: bool = False,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.on_added = on_added
        self.on_removed = on_removed
        self.poll_interval = poll_interval
        self.debounce = debounce
        self.use_watchdog = use_watchdog
        self.report_existing = report_existing
        self.mounts_only = mounts_only
        self.mechanism = "stopped"  # "watchdog+poll" or "poll" while running
        self._known: set[Path] = set()
        self._cond = threading.Condition()
        self._scan_lock = threading.Lock()
        self._due: float | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._observer: Any = None

    @property
    def volumes(self) -> set[Path]:
        """The volumes known after the last scan."""
        return set(self._known)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("VolumeWatcher already started")
        self._stopping = False
        if self.report_existing:
            self.rescan()
        else:
            self._known = scan_volumes(self.roots, self.mounts_only)
        self._observer = self._start_observer() if self.use_watchdog else None
        self.mechanism = "watchdog+poll" if self._observer is not None else "poll"
        self._thread = threading.Thread(target=self._run, name="custodia-volume-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        self.mechanism = "stopped"

    def __enter__(self) -> VolumeWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rescan(self) -> tuple[set[Path], set[Path]]:
        """Scan now, report and return ``(added, removed)``."""
        with self._scan_lock:
            current = scan_volumes(self.roots, self.mounts_only)
            added, removed = diff_volumes(self._known, current)
            self._known = current
            for path in sorted(removed):
                self._call(self.on_removed, path)
            for path in sorted(added):
                self._call(self.on_added, path)
        return added, removed

    def notify_change(self) -> None:
        """Ask for a rescan once things have been quiet for ``debounce`` seconds."""
        with self._cond:
            self._due = time.monotonic() + self.debounce
            self._cond.notify_all()

    @staticmethod
    def _call(callback: Callable[[Path], None], path: Path) -> None:
        try:
            callback(path)
        except Exception:
            log.exception("volume callback %r failed for %s", callback, path)

    def _run(self) -> None:
        next_poll = time.monotonic() + self.poll_interval
        while True:
            with self._cond:
                while not self._stopping:
                    deadline = next_poll if self._due is None else min(next_poll, self._due)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._stopping:
                    return
                self._due = None
            next_poll = time.monotonic() + self.poll_interval
            try:
                self.rescan()
            except Exception:
                log.exception("volume rescan failed")

    def _start_observer(self) -> Any:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            log.warning("watchdog is not installed; watching %s by polling only", self.roots)
            return None
        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in _RELEVANT_EVENTS:
                    watcher.notify_change()

        observer = Observer()
        try:
            scheduled = 0
            for root in self.roots:
                if root.is_dir():
                    observer.schedule(_Handler(), str(root), recursive=False)
                    scheduled += 1
            if not scheduled:
                return None
            observer.start()
        except Exception:
            log.warning("watchdog could not watch %s; polling only", self.roots, exc_info=True)
            return None
        return observer
