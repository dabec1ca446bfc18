"""One settings file in the data directory, written by ``custodia up`` and read by every command.

``custodia up --data-dir var`` keeps the server's database and files in ``var/server`` and writes
``var/custodia.env`` (``CUSTODIA_*`` lines). Every other command (``custodia admin …``, ``custodia
db …``, ``custodia audit …``) loads that file first, so it works on what ``up`` made without any
variable set by hand. The environment still wins over the file, for deployments that configure
by variables. The file is found through ``--settings``, ``CUSTODIA_SETTINGS_FILE``, or
``./var/custodia.env`` (the default data directory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from dotenv import dotenv_values

FILE_NAME = "custodia.env"
ENV_VAR = "CUSTODIA_SETTINGS_FILE"
DEFAULT_DATA_DIR = Path("var")


def path_for(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write(data_dir: Path, values: Mapping[str, str]) -> Path:
    """Write (or rewrite) the settings file of ``data_dir``; returns its path. Values are quoted."""
    path = path_for(data_dir)
    lines = ["# Custodia settings, written by `custodia up`; every `custodia` command reads this file.\n"]
    for key, value in sorted(values.items()):
        if "\n" in value or '"' in value:
            raise ValueError(f"setting {key} cannot hold a newline or a double quote")
        lines.append(f'{key}="{value}"\n')
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return path


def find(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The settings file to read: the one named, else ``$CUSTODIA_SETTINGS_FILE``, else ``./var/custodia.env``."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    named = env.get(ENV_VAR)
    if named:
        return Path(named)
    default = path_for(DEFAULT_DATA_DIR)
    return default if default.is_file() else None


def load(path: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the file's ``CUSTODIA_*`` settings into the environment, where not already set; returns those applied."""
    env = os.environ if environ is None else environ
    if not path.is_file():
        raise FileNotFoundError(f"no settings file at {path}")
    applied = {}
    for key, value in dotenv_values(path).items():
        if key.startswith("CUSTODIA_") and value is not None and key not in env:
            env[key] = value
            applied[key] = value
    return applied
