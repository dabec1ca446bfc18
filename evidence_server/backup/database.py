"""Dumping and restoring the database: pg_dump/pg_restore for PostgreSQL, the backup API for SQLite."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, make_url


class BackupError(RuntimeError):
    pass


def kind_of(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment carrying it (never on a command line)."""
    url: URL = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _sqlite_path(database_url: str) -> Path:
    path = make_url(database_url).database
    if not path:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(path)


def dump(database_url: str, dest_dir: Path) -> str:
    """Write the database into ``dest_dir``; return the file name."""
    if kind_of(database_url) == "sqlite":
        dest = dest_dir / "database.sqlite3"
        dest.unlink(missing_ok=True)
        src = sqlite3.connect(_sqlite_path(database_url))
        out = sqlite3.connect(dest)
        try:
            src.backup(out)  # a consistent copy while the server keeps writing
        finally:
            out.close()
            src.close()
        return dest.name
    dest = dest_dir / "database.pgdump"
    url, env = _libpq(database_url)
    proc = subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(dest), "--dbname", url],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BackupError(f"pg_dump failed: {proc.stderr.strip()[-2000:]}")
    return dest.name


def tables_in(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def restore(database_url: str, src: Path) -> None:
    """Load a dump into an empty database (refuses one that holds tables: restore never merges)."""
    if kind_of(database_url) == "sqlite":
        target = _sqlite_path(database_url)
        if target.exists() and tables_in(database_url):
            raise BackupError(f"{target} is not empty: restore into a new database")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        out = sqlite3.connect(target)
        try:
            source.backup(out)
        finally:
            out.close()
            source.close()
        return
    if tables_in(database_url):
        raise BackupError("the target database is not empty: create a new, empty database and restore into it")
    url, env = _libpq(database_url)
    proc = subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            url,
            str(src),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BackupError(f"pg_restore failed: {proc.stderr.strip()[-2000:]}")
