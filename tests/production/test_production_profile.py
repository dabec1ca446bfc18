"""The production profile on this machine, end to end, with failures.

PostgreSQL (a new database, migrated with ``custodia db upgrade``), Redis as the broker, moto's S3
server with Object Lock, two API processes (``custodia server``) behind nginx running
deploy/nginx/custodia.conf, two Celery workers and beat, three station agents
(``custodia agent run``) with simulated docks. Twenty recorders are docked in two waves; between
them one API process and one worker are killed with SIGKILL. At the end every recording must be
held exactly once, verified, in S3 only, probed by a worker, and have passed fixity; the audit log
must verify.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import func, select

from custodia_wire import fingerprint
from device_drivers.simulator import simulate_device
from evidence_server.accounts import service as accounts
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.recordings.models import Recording
from evidence_server.stations import service as stations
from evidence_server.transfers.models import Transfer, TransferFile
from evidence_server.uploads.models import Upload
from tests.production.conftest import new_bucket
from tests.production.processes import Proc, Processes, wait_for, wait_http
from tests.production.test_deploy_files import nginx_bin, nginx_prefix
from tests.support import services
from tests.support.live import ADMIN_PASSWORD, free_port

pytestmark = [
    pytest.mark.production,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
    pytest.mark.ffmpeg,
]

DEVICES, SEGMENTS, AGENTS = 20, 2, 3
REDIS_DB = 12
TOKEN = "production-profile-metrics-token-0123"


@dataclass
class Device:
    serial: str
    volume: Path  # where the simulator made it; docking moves it under a dock root
    files: dict[str, fingerprint.Fingerprint]  # device path -> fingerprints


def make_devices(root: Path) -> list[Device]:
    def one(i: int) -> Device:
        v = simulate_device(
            root,
            serial=f"DSJ{7000 + i}",
            officer_no=f"{300000 + i}",
            officer_name=None,
            segments=SEGMENTS,
            big_bytes=400_000,
            resolution="160x120",
        )
        return Device(v.serial, v.root, {s.path: fingerprint.of_file(v.file(s)) for s in v.written if s.path})

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(DEVICES)))


@pytest.fixture
def profile_env(tmp_path: Path, empty_pg_url: str, moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The one configuration of every server process (and of this test's own Settings())."""
    services.require_port("127.0.0.1", 6379, "Redis")
    services.require_tool("ffmpeg", "ffprobe")
    secrets = tmp_path / "no-secrets"
    secrets.mkdir()
    env = {
        "CUSTODIA_ENVIRONMENT": "production",
        "CUSTODIA_SECRETS_DIR": str(secrets),
        "CUSTODIA_DATA_DIR": str(tmp_path / "server"),  # keys and tus staging, shared by both API processes
        "CUSTODIA_DATABASE_URL": empty_pg_url,
        "CUSTODIA_STORAGE_BACKEND": "s3",
        "CUSTODIA_S3_ENDPOINT_URL": moto_s3,
        "CUSTODIA_S3_BUCKET": new_bucket(moto_s3),
        "CUSTODIA_S3_ACCESS_KEY_ID": "test",
        "CUSTODIA_S3_SECRET_ACCESS_KEY": "moto-accepts-any-secret",
        "CUSTODIA_S3_OBJECT_LOCK_MODE": "GOVERNANCE",
        "CUSTODIA_TASK_MODE": "celery",
        "CUSTODIA_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "CUSTODIA_CELERY_QUEUE": f"custodia-prod-{uuid.uuid4().hex[:8]}",
        # a killed worker's task comes back within seconds, not the default hour
        "CUSTODIA_CELERY_VISIBILITY_TIMEOUT_S": "10",
        "CUSTODIA_CELERY_BROKER_TRANSPORT_OPTIONS": '{"unacked_restore_interval": 1, "unacked_restore_throttle": 1}',
        "CUSTODIA_LOG_FORMAT": "json",
        "CUSTODIA_METRICS_TOKEN": TOKEN,
        "CUSTODIA_FIXITY_INTERVAL_S": "20",
        "CUSTODIA_FIXITY_FILES_PER_RUN": "60",
        "CUSTODIA_FIXITY_BYTES_PER_SECOND": "0",
        "CUSTODIA_FIXITY_ORPHAN_GRACE_S": "0",
        "CUSTODIA_AUDIT_CHECKPOINT_INTERVAL_S": "10",
        "CUSTODIA_COOKIE_SECURE": "false",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def procs(tmp_path: Path, profile_env: dict[str, str]) -> Iterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    p = Processes(logs, profile_env)
    yield p
    p.stop_all()


def bootstrap(settings: Settings) -> list[str]:
    """Unit U1, the sysadmin ``admin`` and three stations; returns their one-time enrolment codes."""
    ctx = ServerContext(settings)
    with ctx.sessionmaker() as s:
        unit = accounts.ensure_unit(s, "U1", "第一执法大队")
        accounts.create_user(s, username="admin", password=ADMIN_PASSWORD, role="sysadmin", unit=unit)
        codes = [
            stations.create_station(s, name=f"station-{i + 1}", unit_id=unit.id, code_hours=1).code
            for i in range(AGENTS)
        ]
        s.commit()
    ctx.close()
    return codes


def start_nginx(procs: Processes, ports: list[int]) -> tuple[str, Proc, Path]:
    """deploy/nginx/custodia.conf on a free port, upstreams pointing at our API processes."""
    prefix = Path(tempfile.mkdtemp(prefix="custodia-nginx-"))
    os.chmod(prefix, 0o755)  # noqa: S103  (workers run as nobody when nginx starts as root)
    port = free_port()
    nginx_prefix(
        prefix,
        "upstreams.conf",
        tls=False,
        hosts={"127.0.0.1:8001": f"127.0.0.1:{ports[0]}", "127.0.0.1:8002": f"127.0.0.1:{ports[1]}"},
        listen={
            "listen 80;": f"listen 127.0.0.1:{free_port()};",
            "listen [::]:80;": "",
            "listen [::]:443;": "",
            "listen 443;": f"listen 127.0.0.1:{port};",
        },
    )
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.chmod(prefix / d, 0o777)  # noqa: S103  (temporary files of nginx's workers)
    proc = procs.start(
        "nginx",
        [
            nginx_bin(),
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "error.log"),
            "-g",
            "daemon off;",
        ],
    )
    return f"http://127.0.0.1:{port}", proc, prefix / "access.log"


def db_counts(ctx: ServerContext) -> dict[str, Any]:
    with ctx.sessionmaker() as s:
        return {
            "recordings": s.scalar(select(func.count()).select_from(Recording)),
            "done": s.scalar(select(func.count()).select_from(Transfer).where(Transfer.state == "done")),
            "probed": s.scalar(select(func.count()).select_from(Recording).where(Recording.probe_state == "done")),
            "fixity_ok": s.scalar(select(func.count()).select_from(Recording).where(Recording.fixity_state == "ok")),
        }


def test_production_profile_survives_a_killed_api_process_and_worker(
    tmp_path: Path, procs: Processes, profile_env: dict[str, str]
) -> None:
    t0 = time.monotonic()
    figures: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=1) as background:
        made = background.submit(make_devices, tmp_path / "made")  # ffmpeg works while services start

        procs.run("db", "upgrade")  # migrations: an explicit step before any process starts
        figures["migrated_s"] = round(time.monotonic() - t0, 1)
        settings = Settings()  # from the environment, as every process here reads it
        codes = bootstrap(settings)
        ports = [free_port(), free_port()]
        api = [
            procs.custodia(f"api-{i + 1}", "server", "--host", "127.0.0.1", "--port", str(port))
            for i, port in enumerate(ports)
        ]  # both at once: they race to create the signing key
        worker_args = (
            "--pool=threads",
            "--concurrency=3",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        )
        workers = [
            procs.custodia(f"worker-{i + 1}", "worker", f"--hostname=w{i + 1}@%h", *worker_args) for i in range(2)
        ]
        url, nginx, access_log = start_nginx(procs, ports)
        for proc, port in zip(api, ports, strict=True):
            wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        wait_http(url + "/healthz", nginx)
        figures["api_ready_s"] = round(time.monotonic() - t0, 1)

        docks = [tmp_path / f"dock-{i + 1}" for i in range(AGENTS)]
        envs = [agent_env(tmp_path / f"agent-{i + 1}", docks[i], url) for i in range(AGENTS)]
        with ThreadPoolExecutor(max_workers=AGENTS) as pool:
            list(
                pool.map(
                    lambda i: procs.run("agent", "enrol", codes[i], "--server-url", url, env=envs[i]), range(AGENTS)
                )
            )
        for i in range(AGENTS):
            docks[i].mkdir()
            procs.custodia(f"agent-{i + 1}", "agent", "run", env=envs[i])
        # beat last: its first audit checkpoint then signs a log that already holds the enrolments
        procs.custodia("beat", "beat", "--schedule-file", str(tmp_path / "beat-schedule"))
        figures["startup_s"] = round(time.monotonic() - t0, 1)
        devices = made.result()
    figures["devices_made_s"] = round(time.monotonic() - t0, 1)
    expected = {fp.blake3: (d.serial, path) for d in devices for path, fp in d.files.items()}
    total = DEVICES * SEGMENTS
    assert len(expected) == total, "every simulated recording has its own bytes"
    figures["files"], figures["bytes"] = total, sum(fp.size for d in devices for fp in d.files.values())

    ctx = ServerContext(settings)
    watched = [*api, *workers, nginx, *[p for p in procs.procs if p.name.startswith("agent-")]]
    try:
        half = DEVICES // 2
        dock(devices[:half], docks)
        wait_for("the first recordings", lambda: db_counts(ctx)["recordings"] >= 8, 90, watched)
        # mid-run: an API process and a worker die without warning
        before = db_counts(ctx)
        api[0].kill()
        workers[0].kill()
        figures["killed_at_s"] = round(time.monotonic() - t0, 1)
        figures["recordings_at_kill"] = before["recordings"]
        dock(devices[half:], docks)
        alive = [p for p in watched if p not in (api[0], workers[0])]
        figures["all_transfers_done_s"] = round(
            wait_for("20 transfers done", lambda: db_counts(ctx)["done"] == DEVICES, 180, alive)
            + figures["killed_at_s"],
            1,
        )
        wait_for("every recording probed by a worker", lambda: db_counts(ctx)["probed"] == total, 120, alive)
        figures["all_probed_s"] = round(time.monotonic() - t0, 1)
        wait_for("every recording through fixity", lambda: db_counts(ctx)["fixity_ok"] == total, 90, alive)
        figures["all_fixity_ok_s"] = round(time.monotonic() - t0, 1)

        check_exactly_once(ctx, devices, expected, figures)
        check_s3_only(profile_env, settings, expected)
        check_through_nginx(url, total, figures)
        check_logs_are_json(api[1])
        figures.update(upload_routes(access_log, ports))
        out = procs.run("audit", "verify")
        assert out.startswith("OK"), out
        figures["audit"] = out.strip()
    finally:
        figures["total_s"] = round(time.monotonic() - t0, 1)
        figures["final_counts"] = db_counts(ctx)
        ctx.close()
        print("\nproduction profile:", json.dumps(figures, ensure_ascii=False), flush=True)


def agent_env(data_dir: Path, dock: Path, url: str) -> dict[str, str]:
    return {
        "CUSTODIA_AGENT_SERVER_URL": url,
        "CUSTODIA_AGENT_DATA_DIR": str(data_dir),
        "CUSTODIA_AGENT_DOCK_ROOTS": str(dock),
        "CUSTODIA_AGENT_STABILITY_SECONDS": "0.3",
        "CUSTODIA_AGENT_POLL_INTERVAL": "0.3",
        "CUSTODIA_AGENT_DEBOUNCE_SECONDS": "0.3",
        "CUSTODIA_AGENT_UPLOAD_CHUNK_BYTES": str(128 * 1024),
        "CUSTODIA_AGENT_RECOVER_INTERVAL": "3",
        "CUSTODIA_AGENT_RETRY_BASE_DELAY": "0.2",
        "CUSTODIA_AGENT_RETRY_MAX_DELAY": "2",
        "CUSTODIA_AGENT_RETRY_ATTEMPTS": "10",
        "CUSTODIA_AGENT_PROGRESS_INTERVAL": "1",
    }


def dock(devices: list[Device], docks: list[Path]) -> None:
    """Plug each recorder into a station, round robin (the volume appears under the dock root)."""
    for i, d in enumerate(devices):
        os.rename(d.volume, docks[i % len(docks)] / d.volume.name)


def check_exactly_once(
    ctx: ServerContext, devices: list[Device], expected: dict[str, tuple[str, str]], figures: dict[str, Any]
) -> None:
    with ctx.sessionmaker() as s:
        recs = s.scalars(select(Recording)).all()
        links = s.execute(
            select(Transfer.device_serial, TransferFile.path, TransferFile.recording_id).join(
                Transfer, Transfer.id == TransferFile.transfer_id
            )
        ).all()
        transfers = s.scalars(select(Transfer)).all()
        uploads = Counter(s.scalars(select(Upload.state)).all())
    assert {r.blake3 for r in recs} == set(expected) and len(recs) == len(expected)
    for r in recs:
        assert (r.device_serial, r.original_path) == expected[r.blake3]
        assert r.verified_at is not None and r.probe_state == "done" and r.fixity_state == "ok"
    assert sorted((serial, path) for serial, path, _ in links) == sorted(expected.values())  # once per dock
    assert len(transfers) == len(devices) and all(t.state == "done" and t.receipt for t in transfers)
    assert all(len(t.receipt["files"]) == SEGMENTS for t in transfers)
    figures["uploads"] = dict(uploads)


def check_s3_only(env: dict[str, str], settings: Settings, expected: dict[str, tuple[str, str]]) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=env["CUSTODIA_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    listed = [
        o
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=env["CUSTODIA_S3_BUCKET"], Prefix="blake3/")
        for o in page.get("Contents", [])
    ]
    assert sorted("blake3:" + o["Key"].rsplit("/", 1)[1] for o in listed) == sorted(expected)
    head = s3.head_object(Bucket=env["CUSTODIA_S3_BUCKET"], Key=listed[0]["Key"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert settings.storage_dir is not None and not settings.storage_dir.exists()  # no local object store
    assert settings.staging_dir is not None
    assert list(settings.staging_dir.glob("*.part")) == []  # nothing staged left behind


def check_through_nginx(url: str, total: int, figures: dict[str, Any]) -> None:
    token = httpx.post(url + "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()[
        "token"
    ]
    auth = {"Authorization": f"Bearer {token}"}
    rec = httpx.get(url + "/api/v1/recordings", params={"limit": 1}, headers=auth).json()["items"][0]
    full = httpx.get(f"{url}/api/v1/recordings/{rec['id']}/content", headers=auth, timeout=30)
    part = httpx.get(f"{url}/api/v1/recordings/{rec['id']}/content", headers={**auth, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == full.content[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(full.content)}"
    metrics = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    values = {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("custodia_") and " " in line
    }
    assert values["custodia_recordings"] == total and values["custodia_fixity_failures"] == 0
    assert not any(k.startswith("custodia_metrics_errors") and v for k, v in values.items())
    figures["queue_depth_at_end"] = next(v for k, v in values.items() if k.startswith("custodia_task_queue_depth"))
    figures["station_backlog_bytes"] = values["custodia_station_backlog_bytes"]
    fleet = httpx.get(url + "/fleet", headers={**auth, "Accept": "text/html"})
    assert fleet.status_code == 200 and fleet.text.count('data-alerts=""') == AGENTS


def check_logs_are_json(proc: Proc) -> None:
    lines = [line for line in proc.log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(entry)


def upload_routes(access_log: Path, ports: list[int]) -> dict[str, Any]:
    """From nginx's log: which API process served each upload, and what the kill cost the stations."""
    served: dict[str, set[str]] = {}
    statuses: Counter[str] = Counter()
    by_process: Counter[str] = Counter()
    for line in access_log.read_text().splitlines():
        method, uri, status, upstream, *_ = line.split(" ")
        statuses[status] += 1
        for addr in upstream.replace(",", " ").split():
            if addr.startswith("127.0.0.1:"):
                by_process["api-1" if addr.endswith(f":{ports[0]}") else "api-2"] += 1
        if uri.startswith("/api/v1/uploads/") and method in ("PATCH", "HEAD"):
            served.setdefault(uri, set()).add(upstream)
    return {
        "requests_by_status": dict(statuses),
        "requests_by_process": dict(by_process),
        "uploads_served_by_both_processes": sum(1 for ups in served.values() if len(ups) > 1),
    }
