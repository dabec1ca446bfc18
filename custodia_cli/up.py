"""``custodia up``: the whole product on embedded defaults, with a station and a simulated recorder.

The server runs on SQLite with local storage and in-process tasks; the station agent runs in this
process too but talks to the server only over HTTP, exactly as a workstation would.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import uvicorn
from rich.console import Console
from sqlalchemy import select

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import User
from evidence_server.admin import service as admin
from evidence_server.app import create_app
from evidence_server.audit.service import record as audit
from evidence_server.binding.adopt import adopt_all
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.dbadmin import upgrade
from evidence_server.serving import uvicorn_options
from evidence_server.stations import service as stations
from evidence_server.stations.models import Station, station_evidence

console = Console()
DEMO_SERIAL = "DSJ0001"
DEMO_OFFICER = ("102345", "张三")


def bootstrap_accounts(ctx: ServerContext) -> dict[str, str]:
    """First start: unit U1, an administrator and a demo officer, with generated passwords."""
    created: dict[str, str] = {}
    with ctx.sessionmaker() as session:
        unit = accounts.ensure_unit(session, "U1", "第一执法大队")
        for username, role, officer_no, name in (
            ("admin", "sysadmin", None, "系统管理员"),
            ("officer", "officer", DEMO_OFFICER[0], DEMO_OFFICER[1]),
        ):
            if session.scalar(select(User.id).where(User.username == username)) is None:
                # made, and recorded, as an administrator makes a user (the actor: the system)
                made = admin.create_user(
                    session,
                    None,
                    username=username,
                    role=role,
                    unit_id=unit.id,
                    display_name=name,
                    officer_no=officer_no,
                )
                assert made.password is not None  # generated: none was given
                password = made.password
                created[username] = password
        session.commit()
        adopt_all(session)  # a new site's users and station are bound from the first start (an old site's: see adopt)
        session.commit()
    return created


def enrol_station(ctx: ServerContext, agent_settings, server_url: str) -> None:  # type: ignore[no-untyped-def]
    from ingest_agent.client import enrol

    if agent_settings.station_file.exists():
        return
    with ctx.sessionmaker() as session:
        unit_id = accounts.ensure_unit(session, "U1", "第一执法大队").id
        name = agent_settings.station_name
        station = session.scalar(select(Station).where(Station.unit_id == unit_id, Station.name == name))
        if station is None:
            issued = stations.create_station(session, name=name, unit_id=unit_id, code_hours=1)
            audit(  # as an administrator's creation of a station is recorded: which unit's recorders it takes in
                session,
                "station.created",
                object_type="station",
                object_id=issued.station.id,
                details={"name": name, "unit_id": unit_id, "via": "up", "station": station_evidence(issued.station)},
            )
        else:  # the station's credentials file is gone: enrol it again, on the record
            issued = stations.reenrol(session, station, code_hours=1)
            audit(
                session,
                "station.reenrolment_issued",
                object_type="station",
                object_id=station.id,
                details={"name": name, "reason": "custodia up: the station's credentials file is missing"},
            )
        session.commit()
    agent_settings.prepare_dirs()
    enrol(server_url, issued.code, name=agent_settings.station_name, station_file=agent_settings.station_file)


def dock_demo_recorder(dock: Path) -> None:
    from device_drivers.simulator import simulate_device

    if any(dock.iterdir()):
        return
    if shutil.which("ffmpeg") is None:
        console.print("[yellow]ffmpeg is not installed: no demo recorder docked (apt-get install ffmpeg)[/yellow]")
        return
    staging = dock.parent / "dock-staging"
    shutil.rmtree(staging, ignore_errors=True)
    vol = simulate_device(
        staging,
        serial=DEMO_SERIAL,
        officer_no=DEMO_OFFICER[0],
        officer_name=DEMO_OFFICER[1],
        segments=4,
        segment_seconds=5.0,
        resolution="640x360",
        codec="h264",
    )
    vol.root.rename(dock / vol.root.name)  # appears whole, as a mounted volume does
    staging.rmdir()


def command_here(settings_path: Path) -> str:
    """``custodia``, with ``--settings`` when the file is not the one found by default from here."""
    from custodia_cli import settings_file

    default = settings_file.find(None)
    if default is not None and default.resolve() == settings_path.resolve():
        return "custodia"
    return f"custodia --settings {settings_path}"


def write_settings_file(data_dir: Path, settings: Settings) -> Path:
    """``DATA_DIR/custodia.env``: what the other commands need to find this server's database and keys."""
    from custodia_cli import settings_file

    return settings_file.write(
        data_dir,
        {
            "CUSTODIA_DATA_DIR": str(settings.data_dir),
            "CUSTODIA_ENVIRONMENT": settings.environment,
            "CUSTODIA_COOKIE_SECURE": "false",
        },
    )


def run_up(*, data_dir: Path, host: str, port: int, demo: bool) -> None:
    from ingest_agent.config import AgentSettings
    from ingest_agent.progress_lines import http_requests_at_debug
    from ingest_agent.runner import run_agent

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    http_requests_at_debug()
    data_dir = data_dir.expanduser().resolve()
    settings = Settings(data_dir=data_dir / "server", environment="development", cookie_secure=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings_path = write_settings_file(data_dir, settings)
    console.print(f"Settings: [bold]{settings_path}[/bold]  (every `custodia` command run here reads it)")
    upgrade(settings.database_url)
    ctx = ServerContext(settings)
    created = bootstrap_accounts(ctx)

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", **uvicorn_options(settings)))
    thread = threading.Thread(target=server.run, name="custodia-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"the server could not start on {host}:{port}")
        threading.Event().wait(0.05)

    url = f"http://{host}:{port}"
    dock = data_dir / "dock"
    dock.mkdir(parents=True, exist_ok=True)
    agent_settings = AgentSettings(
        server_url=url,
        data_dir=data_dir / "agent",
        dock_roots=[dock],
        station_name="demo-station",
        stability_seconds=1.0,
        spool_reserve_bytes=64 * 1024 * 1024,
    )
    enrol_station(ctx, agent_settings, url)
    if demo:
        dock_demo_recorder(dock)

    console.rule("[bold]Custodia is running")
    console.print(f"Web page:  [bold]{url}/[/bold]   (API: {url}/api/docs)")
    if created:
        for username, password in created.items():
            console.print(
                f"Log in as [bold]{username}[/bold] with password [bold]{password}[/bold]  (generated now, shown once)"
            )
    else:
        console.print(
            f"Accounts exist already; `{command_here(settings_path)} admin set-password admin` "
            "gives admin a new password.",
            markup=False,
        )
    console.print(
        f"Dock folder: {dock}  (a folder placed here is a docked recorder; "
        f"`{command_here(settings_path)} simulate-device {dock} --serial DSJ0002` docks another)",
        markup=False,
    )
    console.print(f"Data: {data_dir}   Stop with Ctrl-C.")
    console.rule()
    try:
        run_agent(agent_settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.close()
