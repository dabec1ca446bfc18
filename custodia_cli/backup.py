"""``custodia backup create|restore|check``: the database, the object store and the signing key."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from evidence_server.config import Settings


@click.group("backup")
def backup() -> None:
    """Back up and restore a whole Custodia (see deploy/README.md)."""


@backup.command("create")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup_create(directory: Path) -> None:
    """Back up into DIRECTORY (new, or an earlier backup: only new objects are copied)."""
    from evidence_server.backup.database import BackupError
    from evidence_server.backup.service import create_backup
    from evidence_server.config import get_settings

    try:
        manifest = create_backup(get_settings(), directory)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"backup in {directory}: database ({manifest['database']['kind']}), "
        f"{manifest['objects']['count']} objects ({manifest['objects']['bytes']} bytes), "
        f"{manifest['recordings']} recordings, signing key {manifest['keys']['key_id']}"
    )


@backup.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--replace-key", is_flag=True, help="Overwrite a different signing key already in place.")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Afterwards verify the audit log and re-read every recording (fixity).",
)
def backup_restore(directory: Path, replace_key: bool, check: bool) -> None:
    """Restore DIRECTORY into the configured (empty) database, object store and key file."""
    from evidence_server.backup.database import BackupError
    from evidence_server.backup.service import restore_backup
    from evidence_server.config import get_settings

    settings = get_settings()
    try:
        done = restore_backup(settings, directory, replace_key=replace_key)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restored: database ({done['database']}), {done['objects']} objects, signing key {done['key_id']}")
    if check:
        _report(settings)


@backup.command("check")
def backup_check() -> None:
    """Verify the audit log and the fixity of every recording of the configured system."""
    from evidence_server.config import get_settings

    _report(get_settings())


def _report(settings: Settings) -> None:
    from evidence_server.backup.service import check_restored

    result = check_restored(settings)
    click.echo(json.dumps({**asdict(result), "ok": result.ok}, indent=2))
    sys.exit(0 if result.ok else 1)
