"""The CLI finds what `custodia up` made: one settings file in the data directory, read by every server
command; a missing database is a clear message, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from custodia_cli import settings_file
from evidence_server import dbadmin
from evidence_server.config import Settings

EXE = Path(sys.executable).parent / "custodia"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, env={**clean, **env}, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["admin", "set-password", "admin"],
        ["admin", "create-user", "--username", "x", "--role", "officer", "--unit", "U1"],
        ["admin", "create-station", "s1", "--unit", "U1"],
    ],
)
def test_a_missing_database_is_a_clear_message_not_a_traceback(tmp_path: Path, args: list[str]) -> None:
    result = run(args, tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert "no Custodia database" in result.stderr and "custodia up" in result.stderr
    assert not (tmp_path / "var").exists()  # and none was made by looking


def make_up_like_data_dir(root: Path) -> Path:
    """What `custodia up --data-dir root/var` leaves: the server under var/server, var/custodia.env."""
    settings = Settings(data_dir=root / "var" / "server", environment="development")
    settings.data_dir.mkdir(parents=True)
    dbadmin.upgrade(settings.database_url)
    return settings_file.write(
        root / "var", {"CUSTODIA_DATA_DIR": str(settings.data_dir), "CUSTODIA_ENVIRONMENT": "development"}
    )


def test_every_server_command_reads_the_settings_file_up_wrote(tmp_path: Path) -> None:
    path = make_up_like_data_dir(tmp_path)
    unit = run(["admin", "create-unit", "U1", "第一执法大队"], tmp_path)  # found as ./var/custodia.env
    assert unit.returncode == 0, unit.stderr
    made = run(["admin", "create-user", "--username", "admin", "--role", "sysadmin", "--unit", "U1"], tmp_path)
    assert made.returncode == 0, made.stderr
    assert "password" in json.loads(made.stdout)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    reset = run(["--settings", str(path), "admin", "set-password", "admin"], elsewhere)
    assert reset.returncode == 0, reset.stderr
    assert len(json.loads(reset.stdout)["password"]) >= 16
    by_env = run(["admin", "set-password", "admin"], elsewhere, CUSTODIA_SETTINGS_FILE=str(path))
    assert by_env.returncode == 0, by_env.stderr
    unknown = run(["admin", "set-password", "nobody"], tmp_path)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr and "nobody" in unknown.stderr


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = settings_file.write(tmp_path, {"CUSTODIA_DATA_DIR": "/from/file", "CUSTODIA_LOG_LEVEL": "INFO"})
    env = {"CUSTODIA_DATA_DIR": "/from/env"}
    applied = settings_file.load(path, env)
    assert env == {"CUSTODIA_DATA_DIR": "/from/env", "CUSTODIA_LOG_LEVEL": "INFO"}
    assert applied == {"CUSTODIA_LOG_LEVEL": "INFO"}


def test_a_value_that_would_break_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        settings_file.write(tmp_path, {"CUSTODIA_DATA_DIR": 'a"\nCUSTODIA_ENVIRONMENT=production'})
