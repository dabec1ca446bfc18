"""Every file under deploy/ is checked: compose parsed and its services checked, ``nginx -t`` on the
nginx configuration, ``systemd-analyze verify`` on the units, the env examples loaded by Settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from custodia_cli.main import cli
from evidence_server.config import Settings
from ingest_agent.config import AgentSettings
from tests.support import services

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVER_FIELDS = set(Settings.model_fields)
AGENT_FIELDS = set(AgentSettings.model_fields)


def setting(var: str, prefix: str = "CUSTODIA_") -> str:
    return var.removeprefix(prefix).lower()


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


# --- compose ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


CUSTODIA_SERVICES = ("migrate", "server-1", "server-2", "worker", "beat")


def test_compose_has_the_whole_profile(compose: dict[str, Any]) -> None:
    services_ = compose["services"]
    assert {"postgres", "redis", "s3", "s3-init", "migrate", "server-1", "server-2", "worker", "beat", "nginx"} <= set(
        services_
    )
    for name, svc in services_.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services_, f"{name} depends on unknown {dep}"
    assert services_["worker"]["deploy"]["replicas"] >= 2
    for name in ("server-1", "server-2"):
        assert services_[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services_[name]
    for name in ("postgres", "redis", "s3"):
        assert "healthcheck" in services_[name]


@pytest.mark.parametrize("name", CUSTODIA_SERVICES)
def test_compose_custodia_services_are_configured_by_settings_only(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    env = svc["environment"]
    unknown = [k for k in env if k.startswith("CUSTODIA_") and setting(k) not in SERVER_FIELDS]
    assert unknown == [], f"{name}: variables no setting reads: {unknown}"
    assert (env["CUSTODIA_ENVIRONMENT"], env["CUSTODIA_STORAGE_BACKEND"], env["CUSTODIA_TASK_MODE"]) == (
        "production",
        "s3",
        "celery",
    )
    for secret in svc["secrets"]:
        assert secret in compose["secrets"] and setting(secret, "custodia_") in SERVER_FIELDS
        assert (DEPLOY / compose["secrets"][secret]["file"]).parent.name == "secrets"
    command = svc["command"][0]
    assert command in cli.commands, f"{name} runs `custodia {command}`, which does not exist"
    # keys and the tus staging folder live on the one volume every process mounts
    assert "custodia-data:/var/lib/custodia" in svc["volumes"]
    assert env["CUSTODIA_STAGING_DIR"].startswith("/var/lib/custodia/")


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    build = compose["x-custodia"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and source not in ("./tls",):
                assert (DEPLOY / source).exists(), volume


# --- nginx ------------------------------------------------------------------------------------


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custodia.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp / "fullchain.pem", tmp / "privkey.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def nginx_prefix(
    tmp: Path,
    upstreams: str,
    *,
    listen: dict[str, str] | None = None,
    tls: bool = True,
    hosts: dict[str, str] | None = None,
) -> Path:
    """A self-contained nginx prefix in ``tmp`` running deploy/nginx/custodia.conf as installed.

    Only paths are rewritten (upstreams, certificates, pid, logs), plus ``listen`` ports and, for the
    compose upstreams, host names that resolve only inside compose's network (``hosts``).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    site = (DEPLOY / "nginx" / "custodia.conf").read_text()
    site = site.replace("/etc/nginx/custodia-upstreams.conf", str(tmp / "upstreams.conf"))
    if tls:
        crt, pem = self_signed(tmp)
        site = site.replace("/etc/custodia/tls/fullchain.pem", str(crt)).replace(
            "/etc/custodia/tls/privkey.pem", str(pem)
        )
    else:  # plain HTTP on the 443 server block (the production test's agents speak HTTP)
        site = re.sub(r"\n\s*ssl_[^\n]*", "", site).replace(" ssl;", ";")
    for old, new in (listen or {}).items():
        site = site.replace(old, new)
    ups = (DEPLOY / "nginx" / upstreams).read_text()
    for old, new in (hosts or {}).items():
        ups = ups.replace(old, new)
    (tmp / "upstreams.conf").write_text(ups)
    (tmp / "custodia.conf").write_text(site)
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir(exist_ok=True)
    (tmp / "nginx.conf").write_text(f"""
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_processes 2;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$request_method $uri $status $upstream_addr $upstream_status';
    access_log {tmp}/access.log upstreams;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/custodia.conf;
}}
""")
    return tmp


def nginx_bin() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None:
        services.missing("nginx is not installed (apt-get install nginx-light)")
    assert exe is not None
    return exe


@pytest.mark.parametrize(
    ("upstreams", "hosts"),
    [
        ("upstreams.conf", {}),
        ("upstreams-compose.conf", {"server-1:": "127.0.0.1:", "server-2:": "127.0.0.2:"}),
    ],
)
def test_nginx_accepts_the_configuration(tmp_path: Path, upstreams: str, hosts: dict[str, str]) -> None:
    from tests.support.live import free_port

    prefix = nginx_prefix(
        tmp_path / "nginx",
        upstreams,
        hosts=hosts,
        listen={
            "listen 80;": f"listen 127.0.0.1:{free_port()};",
            "listen [::]:80;": "",
            "listen [::]:443 ssl;": "",
            "listen 443 ssl;": f"listen 127.0.0.1:{free_port()} ssl;",
        },
    )
    r = subprocess.run(
        [nginx_bin(), "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert "[warn]" not in r.stderr and "[emerg]" not in r.stderr, r.stderr


def test_nginx_passes_large_uploads_and_ranges() -> None:
    site = (DEPLOY / "nginx" / "custodia.conf").read_text()
    uploads = site[site.index("location /api/v1/uploads/") :].split("}", 1)[0]
    assert "client_max_body_size 0;" in site and "proxy_max_temp_file_size 0;" in site
    assert "proxy_request_buffering off;" in uploads and "proxy_pass http://custodia_uploads;" in uploads
    directives = "\n".join(line.split("#", 1)[0] for line in site.splitlines())
    assert "proxy_cache" not in directives  # a cache would answer Range requests itself
    for name in ("upstreams.conf", "upstreams-compose.conf"):
        ups = (DEPLOY / "nginx" / name).read_text()
        block = ups[ups.index("upstream custodia_uploads") :].split("}", 1)[0]
        assert "hash $request_uri consistent;" in block


# --- systemd ----------------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def unit_lines(path: Path) -> list[tuple[str, str]]:
    return [
        tuple(line.split("=", 1))
        for line in path.read_text().splitlines()  # type: ignore[misc]
        if "=" in line and not line.startswith("#")
    ]


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units(unit: Path, tmp_path: Path) -> None:
    lines = unit_lines(unit)
    exec_start = dict(lines)["ExecStart"].split()
    assert exec_start[0] == "/opt/custodia/.venv/bin/custodia" and exec_start[1] in cli.commands
    for key, value in lines:
        if key == "LoadCredential":
            assert setting(value.split(":", 1)[0], "custodia_") in SERVER_FIELDS, value
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: unit syntax not verified")
    name = unit.name.replace("@.service", "@8001.service")
    copy = tmp_path / name
    copy.write_text(unit.read_text().replace("/opt/custodia/.venv/bin/custodia", str(ROOT / ".venv/bin/custodia")))
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    complaints = [line for line in (r.stdout + r.stderr).splitlines() if name in line]
    assert complaints == [], "\n".join(complaints)


def test_the_units_cover_server_worker_beat_and_agent() -> None:
    commands = {dict(unit_lines(u))["ExecStart"].split()[1] for u in UNITS}
    assert commands == {"server", "worker", "beat", "agent"}


# --- environment examples ---------------------------------------------------------------------


def test_the_server_env_example_loads_and_its_placeholders_are_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUSTODIA_SECRETS_DIR", str(tmp_path))  # nothing from this machine's /run/secrets
    env = env_file(DEPLOY / "custodia.env.example")
    values = {setting(k): v for k, v in env.items() if k.startswith("CUSTODIA_")}
    assert set(values) <= SERVER_FIELDS, set(values) - SERVER_FIELDS
    values["data_dir"] = str(tmp_path)
    with pytest.raises(ValueError, match="placeholder"):
        Settings(**values)
    real = {k: v.replace("changeme", "Ohd8ahx4eeRa9ieP") for k, v in values.items()}
    s = Settings(**real)
    assert (s.environment, s.storage_backend, s.task_mode, s.log_format) == ("production", "s3", "celery", "json")


def test_the_agent_env_example_loads() -> None:
    env = env_file(DEPLOY / "agent.env.example")
    values = {setting(k, "CUSTODIA_AGENT_"): v for k, v in env.items() if k.startswith("CUSTODIA_AGENT_")}
    assert set(values) <= AGENT_FIELDS
    s = AgentSettings(**values)
    assert s.server_url.startswith("https://") and len(s.dock_roots) == 2


# --- Prometheus -------------------------------------------------------------------------------


def test_alert_rules_use_metrics_the_server_exports(sqlite_url: str, tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from evidence_server.context import ServerContext
    from evidence_server.observability.metrics import make_registry

    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=sqlite_url))
    exported = generate_latest(make_registry(ctx, list)).decode()
    ctx.close()
    names = set(re.findall(r"^# TYPE (custodia_\w+) ", exported, re.M))  # families, even those without samples
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        used = set(re.findall(r"custodia_\w+", rule["expr"]))
        assert used and used <= names, f"{rule['alert']}: {used - names} not exported"
    yaml.safe_load((DEPLOY / "prometheus" / "scrape.yml").read_text())
