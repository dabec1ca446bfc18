"""``custodia verify`` as a fingerprint-only check: its folder listing is b3sum's, and it checks a
b3sum listing, BLAKE3 only, refusing paths that leave the folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from custodia_cli.main import cli
from tests.support.services import require_tool


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "vol"
    (root / "DCIM" / "20261121").mkdir(parents=True)
    sizes = {"DCIM/20261121/A_0001.MP4": 9 * 1024 * 1024 + 7, "DCIM/20261121/A_0002.MP4": 0, "DCIM/录像 0003.MP4": 4096}
    for rel, size in sizes.items():
        (root / rel).write_bytes(os.urandom(size))
    return root


def test_folder_listing_is_what_b3sum_prints(volume: Path) -> None:
    require_tool("b3sum")
    files = sorted(p.relative_to(volume).as_posix() for p in volume.rglob("*") if p.is_file())
    theirs = subprocess.run(
        ["b3sum", "--num-threads", "1", *files], cwd=volume, check=True, capture_output=True, text=True
    ).stdout
    ours = CliRunner().invoke(cli, ["verify", str(volume)])
    assert ours.exit_code == 0, ours.output
    assert ours.output == theirs


def test_check_passes_on_b3sum_listing_and_names_the_changed_and_missing_files(volume: Path) -> None:
    require_tool("b3sum")
    files = sorted(p.relative_to(volume).as_posix() for p in volume.rglob("*") if p.is_file())
    sums = volume.parent / "B3SUMS"
    sums.write_text(subprocess.run(["b3sum", *files], cwd=volume, check=True, capture_output=True, text=True).stdout)
    ok = CliRunner().invoke(cli, ["verify", "--check", str(sums), str(volume)])
    assert ok.exit_code == 0 and ok.output.count("OK ") == 3, ok.output

    with open(volume / files[0], "r+b") as f:  # one bit flipped deep inside the 9 MiB file
        f.seek(8 * 1024 * 1024 + 3)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 1]))
    (volume / files[1]).unlink()
    bad = CliRunner().invoke(cli, ["verify", "--check", str(sums), str(volume)])
    assert bad.exit_code == 1
    assert f"MISMATCH {files[0]}" in bad.output and f"MISSING  {files[1]}" in bad.output
    assert f"OK       {files[2]}" in bad.output


@pytest.mark.parametrize("line", ["0" * 64 + "  ../outside.txt", "0" * 64 + "  /etc/passwd", "zz  a.mp4"])
def test_a_hostile_or_malformed_listing_is_refused(tmp_path: Path, line: str) -> None:
    (tmp_path / "outside.txt").write_text("x")
    inner = tmp_path / "inner"
    inner.mkdir()
    sums = inner / "B3SUMS"
    sums.write_text(line + "\n")
    out = CliRunner().invoke(cli, ["verify", "--check", str(sums), str(inner)])
    assert out.exit_code == 1
    assert out.output.startswith(("UNSAFE", "BAD LINE")), out.output
