"""The ``custodia`` command: one console script for the server, the station agent and the tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from custodia_cli import verify as verify_mod
from custodia_cli.audit import audit as audit_commands
from custodia_cli.backup import backup as backup_commands

#: Commands that work on the server's database and files: they read the settings file `custodia up` wrote.
SERVER_COMMANDS = frozenset({"admin", "db", "audit", "backup", "server", "worker", "beat"})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The settings file `custodia up` wrote (default: $CUSTODIA_SETTINGS_FILE, else ./var/custodia.env).",
)
@click.pass_context
def cli(ctx: click.Context, settings_path: Path | None) -> None:
    """Custodia: evidence management for enforcement body-worn recorders."""
    from custodia_cli import settings_file

    if ctx.invoked_subcommand not in SERVER_COMMANDS:
        return  # offline checks, the simulator and the station need no server settings
    found = settings_file.find(settings_path)
    if found is None:
        return
    try:
        settings_file.load(found)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc


# --- server side ---------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Database, objects, keys, station spool and the demo dock live here.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option(
    "--demo/--no-demo",
    default=True,
    show_default=True,
    help="Dock a simulated recorder so there is footage to look at.",
)
def up(data_dir: Path, host: str, port: int, demo: bool) -> None:
    """Run everything on embedded defaults: SQLite, local storage, in-process tasks, one station agent."""
    from custodia_cli.up import run_up

    run_up(data_dir=data_dir, host=host, port=port, demo=demo)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True)
def server(host: str, port: int, workers: int) -> None:
    """Run the API and pages (configuration from CUSTODIA_* variables).

    Behind a proxy, set CUSTODIA_TRUSTED_PROXIES to its address so that client addresses are kept;
    forwarding headers from anyone else are ignored.
    """
    import uvicorn

    from evidence_server.config import get_settings
    from evidence_server.observability.logs import logging_config
    from evidence_server.serving import uvicorn_options

    settings = get_settings()
    uvicorn.run(
        "evidence_server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_format, settings.log_level, service="custodia-server"),
        **uvicorn_options(settings, in_process=False),
    )


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (needs CUSTODIA_TASK_MODE=celery and CUSTODIA_BROKER_URL)."""
    from evidence_server.background.worker import celery_app

    celery_app.worker_main(["worker", "--loglevel=INFO", *ctx.args])


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--schedule-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Where beat remembers the last runs (default: DATA_DIR/celerybeat-schedule).",
)
@click.pass_context
def beat(ctx: click.Context, schedule_file: Path | None) -> None:
    """Run Celery beat: the periodic jobs (audit checkpoints, fixity sweeps). Exactly one per deployment."""
    from evidence_server.background.worker import celery_app
    from evidence_server.config import get_settings

    settings = get_settings()
    schedule_file = schedule_file or settings.data_dir / "celerybeat-schedule"
    schedule_file.parent.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", "--loglevel=INFO", "--schedule", str(schedule_file), *ctx.args])


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    from evidence_server.config import get_settings
    from evidence_server.dbadmin import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from evidence_server.config import get_settings
    from evidence_server.dbadmin import downgrade

    downgrade(get_settings().database_url, revision)
    click.echo(f"database at {revision}")


@cli.group()
def admin() -> None:
    """Administration: units, users, stations."""


@admin.command("create-unit")
@click.argument("code")
@click.argument("name")
def admin_create_unit(code: str, name: str) -> None:
    from custodia_cli.admin import create_unit

    click.echo(json.dumps(create_unit(code, name), ensure_ascii=False))


@admin.command("create-user")
@click.option("--username", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["officer", "device_admin", "legal_affairs", "case_handler", "auditor", "sysadmin"]),
)
@click.option("--unit", "unit_code", required=True, help="Unit code, e.g. U1.")
@click.option("--officer-no", default=None)
@click.option("--display-name", default=None)
@click.option("--password", default=None, help="Omit to generate one (printed once).")
def admin_create_user(
    username: str, role: str, unit_code: str, officer_no: str | None, display_name: str | None, password: str | None
) -> None:
    from custodia_cli.admin import create_user

    result = create_user(
        username=username,
        role=role,
        unit_code=unit_code,
        officer_no=officer_no,
        display_name=display_name,
        password=password,
    )
    click.echo(json.dumps(result, ensure_ascii=False))


@admin.command("set-password")
@click.argument("username")
def admin_set_password(username: str) -> None:
    """Give a user a new generated password (printed once)."""
    from custodia_cli.admin import set_password

    click.echo(json.dumps(set_password(username), ensure_ascii=False))


@admin.command("create-station")
@click.argument("name")
@click.option("--unit", "unit_code", required=True)
def admin_create_station(name: str, unit_code: str) -> None:
    """Register a station and print its one-time enrolment code."""
    from custodia_cli.admin import create_station

    click.echo(json.dumps(create_station(name, unit_code), ensure_ascii=False, default=str))


@admin.command("reenrol-station")
@click.argument("name")
@click.option("--unit", "unit_code", required=True)
@click.option("--reason", required=True, help="Why the station is enrolled again (kept in the audit log).")
def admin_reenrol_station(name: str, unit_code: str, reason: str) -> None:
    """Print a new one-time enrolment code for an existing station; its current token ends when it is used."""
    from custodia_cli.admin import reenrol_station

    click.echo(json.dumps(reenrol_station(name, unit_code, reason), ensure_ascii=False, default=str))


# --- station side --------------------------------------------------------------------------------


@cli.group()
def agent() -> None:
    """The ingest agent on a collection workstation (configuration from CUSTODIA_AGENT_*)."""
    import logging

    from rich.logging import RichHandler

    from ingest_agent.progress_lines import http_requests_at_debug

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    http_requests_at_debug()


@agent.command("enrol")
@click.argument("code")
@click.option("--server-url", envvar="CUSTODIA_AGENT_SERVER_URL", required=True)
@click.option("--name", default=None)
def agent_enrol(code: str, server_url: str, name: str | None) -> None:
    """Exchange a one-time enrolment code for this station's token."""
    from ingest_agent.runner import main_enrol

    sys.exit(main_enrol(code, server_url=server_url, name=name))


@agent.command("run")
def agent_run() -> None:
    """Watch the dock folders and ingest every recorder docked there."""
    from ingest_agent.runner import main_run

    sys.exit(main_run())


@agent.command("ingest")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--serial", default=None, help="Device serial, when the folder does not tell it.")
@click.option("--officer-no", default=None)
@click.option("--officer-name", default=None)
def agent_ingest(path: Path, serial: str | None, officer_no: str | None, officer_name: str | None) -> None:
    """Ingest one folder or mounted volume now (SD-card reader, manual import)."""
    from ingest_agent.runner import main_ingest

    sys.exit(main_ingest(path, serial=serial, officer_no=officer_no, officer_name=officer_name))


@agent.command("rotate-token")
def agent_rotate_token() -> None:
    """Replace this station's token; the old one works until the new one is first used."""
    from ingest_agent.client import ApiError, NotEnrolled, StationClient, StationCredentials
    from ingest_agent.config import AgentSettings

    settings = AgentSettings()
    try:
        creds = StationCredentials.load(settings.station_file)
        with StationClient(settings.server_url, creds) as client:
            client.rotate_token(settings.station_file)
    except (NotEnrolled, ApiError) as exc:
        click.echo(f"token rotation failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"station {creds.station_id}: new token saved in {settings.station_file}")


@cli.command(
    "simulate-device",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.pass_context
def simulate_device(ctx: click.Context) -> None:
    """Write a realistic recorder volume with real ffmpeg video (see --help)."""
    from device_drivers.simulator import main

    sys.exit(main(list(ctx.args)))


@cli.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--fingerprint", "fingerprints", multiple=True, help="blake3:<hex> or sha256:<hex>; repeatable.")
@click.option(
    "--manifest",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A custodia.manifest/1 file; TARGET is the folder its paths are relative to.",
)
@click.option(
    "--receipt",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A custodia.receipt/1 file to check against --key.",
)
@click.option(
    "--key",
    default=None,
    help="The server's public key (base64), for --receipt, the audit log and "
    "court packages (pins the key the package must be signed with).",
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="An audit-log checkpoint (signed note) to check against --key.",
)
@click.option(
    "--old-checkpoint",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The earlier checkpoint, for --consistency.",
)
@click.option(
    "--inclusion",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="An audit-entry inclusion proof (JSON from /api/v1/audit/proofs/inclusion).",
)
@click.option(
    "--consistency",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A consistency proof between two checkpoints (JSON from /api/v1/audit/proofs/consistency).",
)
@click.option(
    "--excerpt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A signed audit-log excerpt (custodia.audit-excerpt/1, from the audit page) to check against --key.",
)
@click.option(
    "--check",
    "sums",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A b3sum listing ('<hex>  <path>' lines) to check, BLAKE3 only; paths are relative to TARGET "
    "(default: the listing's folder). `custodia verify FOLDER` prints such a listing.",
)
@click.option(
    "--trusted-keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="A file of keys you trust (PEM blocks, base64 keys or SHA256: fingerprints, one a line), for packages.",
)
@click.option(
    "--key-fingerprint",
    multiple=True,
    help="The fingerprint (SHA256:…) of the key you trust, as printed on the paper form, for packages.",
)
@click.option(
    "--tsa-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The CA certificate(s) (PEM) of the time-stamping authority you trust, for a package's time-stamps.",
)
@click.option(
    "--list",
    "--handover",
    "document",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An extraction list (custodia.extraction-list/1) or handover receipt (custodia.handover-receipt/1) "
    "to check; TARGET (optional) is the folder or court package holding the listed files.",
)
@click.option(
    "--pdf",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The PDF of the --list or --handover document: checked against the digest and signature in its JSON.",
)
@click.option(
    "--tst",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The RFC 3161 time-stamp of the --list or --handover JSON (its .tst download); --tsa-ca names its CA.",
)
def verify(
    target: Path | None,
    fingerprints: tuple[str, ...],
    manifest: Path | None,
    receipt: Path | None,
    key: str | None,
    checkpoint: Path | None,
    old_checkpoint: Path | None,
    inclusion: Path | None,
    consistency: Path | None,
    excerpt: Path | None,
    sums: Path | None,
    trusted_keys: tuple[Path, ...],
    key_fingerprint: tuple[str, ...],
    tsa_ca: Path | None,
    document: Path | None,
    pdf: Path | None,
    tst: Path | None,
) -> None:
    """Check files, receipts, court packages (a case's ZIP or its unpacked folder) and the audit log
    offline. Exit 0 only if all match. A FOLDER alone: print its files' BLAKE3 as b3sum does.

    A court package gets two answers, intact and signed by a key you trust, and one exit status:
    0 verified; 1 not intact; 3 intact but signed by a key you did not name; 4 not authentic; 5 an original
    is not the bytes recorded at ingest; 6 checkpoint altered or not consistent; 7 a custody entry removed,
    altered or not in the log; 8 older than the --checkpoint you hold (replayed); 9 a time-stamp fails.
    With a package, --checkpoint is a newer checkpoint the package must cover (and --consistency its proof).

    An extraction list or handover receipt (--list / --handover FILE.json, with --pdf FILE.pdf): exit 0
    verified; 1 a file or the PDF differs; 3 signed by a key you did not name; 4 not authentic.
    """
    ok = True
    if document is not None:
        sys.exit(
            verify_mod.check_document(
                document,
                pdf=pdf,
                target=target,
                key=key,
                trusted_keys=list(trusted_keys),
                key_fingerprints=list(key_fingerprint),
                echo=click.echo,
                tst=tst,
                tsa_ca=tsa_ca,
            )
        )
    if excerpt is not None:
        from custodia_cli import verify_excerpt

        sys.exit(0 if verify_excerpt.run(excerpt, key, click.echo) else 1)
    if target is not None and not (fingerprints or manifest or receipt or inclusion) and verify_mod.is_package(target):
        sys.exit(
            verify_mod.check_package(
                target,
                key=key,
                trusted_keys=list(trusted_keys),
                key_fingerprints=list(key_fingerprint),
                tsa_ca=tsa_ca,
                checkpoint=checkpoint,
                consistency=consistency,
                echo=click.echo,
            )
        )
    if sums is not None:
        sys.exit(0 if verify_mod.check_sums(sums, target, click.echo) else 1)
    if checkpoint or inclusion or consistency:
        from custodia_cli import verify_log

        ok = verify_log.run(
            key=key,
            checkpoint=checkpoint,
            old_checkpoint=old_checkpoint,
            inclusion=inclusion,
            consistency=consistency,
            echo=click.echo,
        )
    elif target is None:
        raise click.UsageError("give a file or folder to check, or --checkpoint / --inclusion / --consistency")
    if target is not None:
        ok &= verify_mod.run(
            target, fingerprints=list(fingerprints), manifest=manifest, receipt=receipt, key=key, echo=click.echo
        )
    sys.exit(0 if ok else 1)


@cli.group()
def push() -> None:
    """Push ingest: accounts for body-worn systems that upload over the network."""


@push.command("connection-file")
@click.option("--name", required=True, help="A name for the body-worn system, e.g. bws-east.")
@click.option("--unit", "unit_code", required=True, help="Unit code, e.g. U1.")
@click.option("--url", "base_url", required=True, help="The address the body-worn system reaches this server at.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None, help="Write it here (mode 600).")
def push_connection_file(name: str, unit_code: str, base_url: str, out: str | None) -> None:
    """Make a push account and print its connection file (its key is shown only here)."""
    from custodia_cli.admin import push_connection_file as make

    text = json.dumps(make(name, unit_code, base_url), ensure_ascii=False, indent=2)
    if out is None:
        click.echo(text)
        return
    import os

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    click.echo(f"connection file written to {out}")


cli.add_command(audit_commands)
cli.add_command(backup_commands)

if __name__ == "__main__":
    cli()
