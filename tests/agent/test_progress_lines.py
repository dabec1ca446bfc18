"""Progress for logs: the lines one snapshot adds, without a station."""

from __future__ import annotations

from ingest_agent.progress import DockProgress
from ingest_agent.progress_lines import LineProgress


def test_one_line_per_dock_per_file_and_per_state_change() -> None:
    lines: list[str] = []
    view = LineProgress(lines.append)
    p = DockProgress("t1", "DSJ0001", "102345 张三", "registered", files_total=2, bytes_total=2 * 1024 * 1024)
    view(p)
    for _ in range(5):  # byte counts alone add nothing
        p = DockProgress(**{**p.__dict__, "state": "copying", "bytes_copied": p.bytes_copied + 1000})
        view(p)
    p = DockProgress(**{**p.__dict__, "files_done": 2})  # two files at once: two lines
    view(p)
    p = DockProgress(**{**p.__dict__, "state": "done", "message": "2 file(s) wiped from the device"})
    view(p)
    assert lines[0].startswith("dock DSJ0001 (102345 张三): 2 file(s)")
    assert [ln for ln in lines if " done (" in ln] == [
        lines[2],
        lines[3],
    ]
    assert lines[1].endswith(": copying")
    assert lines[-1].endswith(": done: 2 file(s) wiped from the device")
    assert len(lines) == 5
