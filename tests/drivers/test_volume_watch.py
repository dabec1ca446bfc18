"""Noticing docked volumes and files that stopped growing."""

from __future__ import annotations

import queue
import shutil
import time
from pathlib import Path

import pytest

from device_drivers.volume_watch import VolumeWatcher, diff_volumes, scan_volumes

REPORT_WITHIN = 5.0  # seconds: a docked recorder is noticed at least this fast


def test_diff_volumes() -> None:
    a, b, c = Path("/media/a"), Path("/media/b"), Path("/media/c")
    assert diff_volumes({a, b}, {b, c}) == ({c}, {a})
    assert diff_volumes(set(), set()) == (set(), set())


def test_scan_ignores_files_hidden_dirs_symlinks_and_missing_roots(tmp_path: Path) -> None:
    (tmp_path / "ZFY_DSJ0001").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "file").touch()
    (tmp_path / "link").symlink_to(tmp_path / "ZFY_DSJ0001")
    assert scan_volumes([tmp_path, tmp_path / "missing"]) == {tmp_path / "ZFY_DSJ0001"}
    assert scan_volumes([tmp_path], mounts_only=True) == set()  # none of them is a mount point


@pytest.mark.parametrize(
    ("use_watchdog", "poll_interval", "mechanism"),
    [(True, 60.0, "watchdog+poll"), (False, 0.2, "poll")],
    ids=["watchdog", "polling-only"],
)
def test_watcher_reports_added_and_removed_volumes(
    tmp_path: Path, use_watchdog: bool, poll_interval: float, mechanism: str
) -> None:
    # With watchdog the poll interval is too long to help: only the events can report in time.
    media = tmp_path / "media"
    media.mkdir()
    (media / "ALREADY").mkdir()
    events: queue.Queue[tuple[str, Path]] = queue.Queue()
    watcher = VolumeWatcher(
        [media, tmp_path / "not-yet"],
        on_added=lambda p: events.put(("added", p)),
        on_removed=lambda p: events.put(("removed", p)),
        poll_interval=poll_interval,
        debounce=0.1,
        use_watchdog=use_watchdog,
    )
    with watcher:
        assert watcher.mechanism == mechanism
        assert events.get(timeout=1) == ("added", media / "ALREADY")

        started = time.monotonic()
        (media / "ZFY_DSJ0001").mkdir()
        assert events.get(timeout=REPORT_WITHIN) == ("added", media / "ZFY_DSJ0001")
        assert time.monotonic() - started < REPORT_WITHIN

        shutil.rmtree(media / "ZFY_DSJ0001")
        assert events.get(timeout=REPORT_WITHIN) == ("removed", media / "ZFY_DSJ0001")
        assert watcher.volumes == {media / "ALREADY"}
    assert watcher.mechanism == "stopped"
    assert events.empty()


def test_a_failing_callback_does_not_stop_the_watcher(tmp_path: Path) -> None:
    seen: queue.Queue[Path] = queue.Queue()

    def on_added(path: Path) -> None:
        seen.put(path)
        raise RuntimeError("the agent had a bad moment")

    with VolumeWatcher([tmp_path], on_added, lambda p: None, poll_interval=0.1, use_watchdog=False):
        (tmp_path / "A").mkdir()
        assert seen.get(timeout=REPORT_WITHIN) == tmp_path / "A"
        (tmp_path / "B").mkdir()
        assert seen.get(timeout=REPORT_WITHIN) == tmp_path / "B"
