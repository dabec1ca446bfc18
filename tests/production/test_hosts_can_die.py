"""The production profile as several hosts, and hosts that die or drop off the network.

Each host is a network namespace of its own with its own address on one bridge (tests/production/
hosts.py): two API hosts (``custodia server``) behind an nginx host running deploy/nginx/custodia.conf,
a worker host (``custodia worker`` and ``custodia beat``), an S3 host (moto's server, Object Lock), and
a station host (``custodia agent run``) whose link is slowed to 64 Mbit/s. PostgreSQL and Redis run in
the root namespace, the "database host", reached at the bridge's address. The hosts share only what
a real bureau shares: the database, the broker, S3, and the upload staging folder (a network file
system in a real deployment; here the one file system).

1. The station uploads a 40 MB recording. Mid-upload, the API host receiving it loses power: its port
   on the bridge goes down (no RST, no ICMP: silence), then its process gets SIGKILL. The station
   resumes the same tus upload through nginx on the other API host, from the offset that host reports,
   and gets a receipt it verifies against the key it pinned at enrolment.
2. The worker host is partitioned (its port down) the moment it takes the big recording's derivation,
   and while a second recorder is docked: the surviving API host verifies its recordings and queues
   their probe and derivation tasks in Redis, which no worker can take. When the partition ends, the
   worker finishes what it held and runs what waited.
3. The worker cannot reach the S3 host (a route on each side says so) while a third recorder is
   docked: its tasks meet an unreachable store, which must not be taken for damage, and are tried
   again; once S3 is reachable they run.
4. Nothing is lost or doubled: every recording once in PostgreSQL and once in S3 with the device's
   digests, one upload per file, one ``recording.verified`` audit entry per recording, one derived
   file per kind, one receipt per docking, probe and fixity done for all, and ``custodia audit verify``
   passes.

This shows a bureau that outgrows one machine grows onto PostgreSQL, S3 and Celery, which it already
runs, by configuration alone: the hosts here differ from the one-machine profile only in addresses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from custodia_wire import documents, fingerprint
from device_drivers.simulator import simulate_device
from evidence_server.audit.models import AuditEvent
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.media.models import DerivedMedia
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer
from evidence_server.uploads.models import IntegrityIncident, Upload
from tests.production.conftest import new_bucket
from tests.production.hosts import HostNetwork, netns_unavailable
from tests.production.processes import CUSTODIA, Proc, Processes, wait_for, wait_http
from tests.production.test_deploy_files import nginx_bin, nginx_prefix
from tests.production.test_production_profile import Device, agent_env, bootstrap, check_s3_only
from tests.support import services

pytestmark = [
    pytest.mark.production,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
    pytest.mark.ffmpeg,
]

BIG = 40_000_000  # the recording that is uploading when its API host dies
STATION_RATE = "64mbit"  # about 5 s for BIG: the kill lands mid-upload
SMALL_SEGMENTS = 3  # the recorder docked while the worker is cut off
PARTITION_S = 12.0  # longer than the visibility timeout: the worker's own unacked tasks come back too
S3_AWAY_S = 3.0  # the worker cannot reach S3 for a while: this long after its first retry
REDIS_DB = 13
API_PORT, NGINX_PORT, S3_PORT = 8000, 8080, 5000
RESTORE_SOON = '{"unacked_restore_interval": 1, "unacked_restore_throttle": 1}'


@pytest.fixture
def network() -> Iterator[HostNetwork]:
    why = netns_unavailable()
    if why:
        services.missing(why)
    net = HostNetwork()
    try:
        net.up()
        for name in ("api1", "api2", "worker", "s3", "edge", "station"):
            net.add(name)
        yield net
    finally:
        net.close()


@pytest.fixture
def hosts_env(
    tmp_path: Path, empty_pg_url: str, network: HostNetwork, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, str], Processes]]:
    """The configuration every host reads, and the processes; the processes stop before the network goes."""
    services.require_port("127.0.0.1", 6379, "Redis")
    services.require_tool("ffmpeg", "ffprobe")
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if moto is None:
        services.missing("moto's standalone server is not installed (pip install 'moto[server]')")
    assert moto is not None
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs, {})
    try:
        gw = network.gateway
        # the database host: PostgreSQL and Redis listen on 127.0.0.1 only; relay them onto the bridge
        relay = procs.start(
            "relay",
            [sys.executable, "-m", "tests.production.hosts", "forward", f"{gw}:5432=127.0.0.1:5432"]
            + [f"{gw}:6379=127.0.0.1:6379"],
        )
        s3_host = network.hosts["s3"]
        s3 = procs.start("s3", s3_host.argv(moto, "-H", s3_host.address, "-p", str(S3_PORT)))
        s3_url = f"http://{s3_host.address}:{S3_PORT}"
        wait_for("the relay", lambda: "forwarding" in relay.tail(), 20, [relay], every=0.1)
        wait_http(s3_url + "/moto-api/", s3, timeout=30)
        secrets = tmp_path / "no-secrets"
        secrets.mkdir()
        pg_host_url = empty_pg_url.replace("@127.0.0.1:5432/", f"@{gw}:5432/")
        assert pg_host_url != empty_pg_url, empty_pg_url
        env = {
            "CUSTODIA_ENVIRONMENT": "production",
            "CUSTODIA_SECRETS_DIR": str(secrets),
            "CUSTODIA_DATA_DIR": str(tmp_path / "server"),  # keys and tus staging: the shared file system
            "CUSTODIA_DATABASE_URL": pg_host_url,
            "CUSTODIA_STORAGE_BACKEND": "s3",
            "CUSTODIA_S3_ENDPOINT_URL": s3_url,
            "CUSTODIA_S3_BUCKET": new_bucket(s3_url),
            "CUSTODIA_S3_ACCESS_KEY_ID": "test",
            "CUSTODIA_S3_SECRET_ACCESS_KEY": "moto-accepts-any-secret",
            "CUSTODIA_S3_OBJECT_LOCK_MODE": "GOVERNANCE",
            "CUSTODIA_TASK_MODE": "celery",
            "CUSTODIA_BROKER_URL": f"redis://{gw}:6379/{REDIS_DB}",
            "CUSTODIA_CELERY_QUEUE": f"custodia-hosts-{uuid.uuid4().hex[:8]}",
            "CUSTODIA_CELERY_VISIBILITY_TIMEOUT_S": "10",
            "CUSTODIA_CELERY_BROKER_TRANSPORT_OPTIONS": RESTORE_SOON,
            "CUSTODIA_LOG_FORMAT": "json",
            "CUSTODIA_FIXITY_INTERVAL_S": "8",
            "CUSTODIA_FIXITY_FILES_PER_RUN": "60",
            "CUSTODIA_FIXITY_BYTES_PER_SECOND": "0",
            "CUSTODIA_FIXITY_ORPHAN_GRACE_S": "0",
            "CUSTODIA_AUDIT_CHECKPOINT_INTERVAL_S": "10",
            "CUSTODIA_AUDIT_SEQUENCE_INTERVAL_S": "5",
            "CUSTODIA_COOKIE_SECURE": "false",
            "CUSTODIA_TRUSTED_PROXIES": network.hosts["edge"].address,
        }
        procs.env = env
        # this test's own process sits on the database host: same settings, its loopback addresses
        for key, value in {**env, "CUSTODIA_DATABASE_URL": empty_pg_url}.items():
            monkeypatch.setenv(key, value)
        yield env, procs
    finally:
        procs.stop_all()


def make_devices(root: Path) -> tuple[Device, Device, Device]:
    def one(i: int, segments: int, size: int) -> Device:
        v = simulate_device(
            root,
            serial=f"DSJ{8000 + i}",
            officer_no=f"{400000 + i}",
            officer_name=None,
            segments=segments,
            big_bytes=size,
            resolution="160x120",
        )
        return Device(v.serial, v.root, {s.path: fingerprint.of_file(v.file(s)) for s in v.written if s.path})

    return one(1, 1, BIG), one(2, SMALL_SEGMENTS, 300_000), one(3, 1, 300_000)


def start_edge(procs: Processes, network: HostNetwork) -> tuple[str, Proc, Path]:
    """nginx on the edge host, deploy/nginx/custodia.conf with its upstreams at the two API hosts."""
    edge = network.hosts["edge"].address
    prefix = Path(tempfile.mkdtemp(prefix="custodia-nginx-"))
    os.chmod(prefix, 0o755)  # noqa: S103  (workers run as nobody when nginx starts as root)
    nginx_prefix(
        prefix,
        "upstreams.conf",
        tls=False,
        hosts={
            "127.0.0.1:8001": f"{network.hosts['api1'].address}:{API_PORT}",
            "127.0.0.1:8002": f"{network.hosts['api2'].address}:{API_PORT}",
        },
        listen={
            "listen 80;": f"listen {edge}:{NGINX_PORT + 1};",
            "listen [::]:80;": "",
            "listen [::]:443;": "",
            "listen 443;": f"listen {edge}:{NGINX_PORT};",
        },
    )
    conf = prefix / "nginx.conf"  # the request's body length too: how much each host received
    conf.write_text(
        conf.read_text().replace(
            "'$request_method $uri $status $upstream_addr $upstream_status'",
            "'$request_method|$uri|$status|$upstream_addr|$upstream_status|$request_length'",
        )
    )
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.chmod(prefix / d, 0o777)  # noqa: S103  (temporary files of nginx's workers)
    argv = [nginx_bin(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
    proc = procs.start("nginx", network.hosts["edge"].argv(*argv))
    return f"http://{edge}:{NGINX_PORT}", proc, prefix / "access.log"


def patches(access_log: Path) -> list[tuple[str, str, int]]:
    """(upload id, upstream that answered, request bytes) of each PATCH nginx logged, in order."""
    out = []
    for line in access_log.read_text().splitlines() if access_log.exists() else []:
        method, uri, _status, upstream, _ustatus, length = line.split("|")
        if method == "PATCH" and uri.startswith("/api/v1/uploads/"):
            out.append((uri.rsplit("/", 1)[1], upstream.split(",")[-1].strip(), int(length)))
    return out


def incidents(ctx: ServerContext) -> int:
    with ctx.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(IntegrityIncident)) or 0)


def incident_kinds(ctx: ServerContext) -> list[tuple[str, Any]]:
    with ctx.sessionmaker() as s:
        return [(i.kind, i.details) for i in s.scalars(select(IntegrityIncident))]


def counts(ctx: ServerContext) -> dict[str, int]:
    with ctx.sessionmaker() as s:

        def n(q: Any) -> int:
            return int(s.scalar(q) or 0)

        return {
            "recordings": n(select(func.count()).select_from(Recording)),
            "done": n(select(func.count()).select_from(Transfer).where(Transfer.state == "done")),
            "probed": n(select(func.count()).select_from(Recording).where(Recording.probe_state == "done")),
            "thumbnails": n(select(func.count()).select_from(DerivedMedia).where(DerivedMedia.kind == "thumbnail")),
            "fixity_ok": n(select(func.count()).select_from(Recording).where(Recording.fixity_state == "ok")),
        }


def test_an_api_host_dies_mid_upload_and_the_worker_host_is_partitioned(
    tmp_path: Path, network: HostNetwork, hosts_env: tuple[dict[str, str], Processes]
) -> None:
    env, procs = hosts_env
    t0 = time.monotonic()
    figures: dict[str, Any] = {"hosts": {h.name: h.address for h in network.hosts.values()}}
    api_hosts = [network.hosts["api1"], network.hosts["api2"]]
    with ThreadPoolExecutor(max_workers=1) as background:
        made = background.submit(make_devices, tmp_path / "made")
        procs.run("db", "upgrade", env={"CUSTODIA_DATABASE_URL": os.environ["CUSTODIA_DATABASE_URL"]})
        settings = Settings()
        (code,) = bootstrap(settings)[:1]
        api = [
            procs.start(f"api-{h.name}", h.argv(*CUSTODIA, "server", "--host", h.address, "--port", str(API_PORT)))
            for h in api_hosts
        ]
        worker_host = network.hosts["worker"]
        worker = procs.start(
            "worker",
            worker_host.argv(*CUSTODIA, "worker", "--hostname=w1@%h", "--pool=threads", "--concurrency=3")
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
        )
        url, nginx, access_log = start_edge(procs, network)
        for proc, h in zip(api, api_hosts, strict=True):
            wait_http(f"http://{h.address}:{API_PORT}/readyz", proc)
        wait_http(url + "/healthz", nginx)
        station_dir, dock_dir = tmp_path / "station", tmp_path / "dock"
        dock_dir.mkdir()
        a_env = {
            **agent_env(station_dir, dock_dir, url),
            "CUSTODIA_AGENT_UPLOAD_CHUNK_BYTES": str(1024 * 1024),
            "CUSTODIA_AGENT_HTTP_TIMEOUT_SECONDS": "10",
        }
        procs.run("agent", "enrol", code, "--server-url", url, env=a_env)
        network.shape("station", STATION_RATE)
        agent = procs.start("agent", network.hosts["station"].argv(*CUSTODIA, "agent", "run"), env=a_env)
        beat = procs.start(
            "beat", worker_host.argv(*CUSTODIA, "beat", "--schedule-file", str(tmp_path / "beat-schedule"))
        )
        big, small, third = made.result()
    figures["startup_s"] = round(time.monotonic() - t0, 1)
    expected = {fp.blake3: (d.serial, path, fp) for d in (big, small, third) for path, fp in d.files.items()}
    assert len(expected) == 1 + SMALL_SEGMENTS + 1

    ctx = ServerContext(settings)
    staging = settings.staging_dir
    assert staging is not None
    everyone = [*api, worker, beat, nginx, agent]
    try:
        # --- 1. the API host receiving the big upload loses power mid-upload --------------------------------
        os.rename(big.volume, dock_dir / big.volume.name)

        def receiving() -> tuple[str, str] | None:
            seen = patches(access_log)
            parts = {p.stem: p.stat().st_size for p in staging.glob("*.part")} if staging.exists() else {}
            for upload_id, size in parts.items():
                served = [up for uid, up, _ in seen if uid == upload_id]
                if served and size >= BIG // 4:
                    return upload_id, served[-1]
            return None

        wait_for("a quarter of the big upload", receiving, 90, everyone, every=0.05)
        found = receiving()
        assert found is not None
        upload_id, upstream = found
        victim = next(i for i, h in enumerate(api_hosts) if upstream.startswith(h.address + ":"))
        survivor = api_hosts[1 - victim]
        network.cut(api_hosts[victim].name)  # off the network first: nothing it sends gets out, not even an RST
        api[victim].kill()
        figures["killed"] = api_hosts[victim].name
        figures["staged_at_kill"] = (staging / f"{upload_id}.part").stat().st_size
        figures["killed_at_s"] = round(time.monotonic() - t0, 1)
        alive = [p for p in everyone if p is not api[victim]]

        def receipted(serial: str) -> bool:
            with ctx.sessionmaker() as s:
                return bool(
                    s.scalar(
                        select(func.count())
                        .select_from(Transfer)
                        .where(Transfer.device_serial == serial, Transfer.state == "done")
                    )
                )

        wait_for("the big recording's receipt", lambda: receipted(big.serial), 150, alive)
        figures["big_receipted_s"] = round(time.monotonic() - t0, 1)
        mine = [(up, n) for uid, up, n in patches(access_log) if uid == upload_id]
        after = [(up, n) for up, n in mine if up.startswith(survivor.address + ":")]
        assert after, f"no PATCH of upload {upload_id} reached {survivor.name}: {mine}"
        # resumed, not restarted: the survivor received less than the whole file
        figures["bytes_after_kill"] = sum(n for _, n in after)
        assert sum(n for _, n in after) < BIG
        figures["patches"] = {"before_kill": len(mine) - len(after), "after_kill": len(after)}

        # --- 2. the worker host is cut off mid-task, and while a second recorder's tasks are queued ---------
        # the moment the worker takes the big recording's derivation (which reads 40 MB back from S3)
        # (usually mid-task; on an idle machine it may be done already, and the cut still holds the rest)
        wait_for("the big recording's derivation taken", lambda: tasks_begun(worker)[0]["derive_recording"], 60, alive)
        network.cut("worker")
        cut_at = time.monotonic()
        figures["partitioned_at_s"] = round(cut_at - t0, 1)
        figures["cut_during"] = sorted(name for name, n in tasks_begun(worker)[1].items() if n > 0)
        os.rename(small.volume, dock_dir / small.volume.name)
        wait_for("the second recorder's receipt", lambda: receipted(small.serial), 90, alive)
        time.sleep(max(0.0, PARTITION_S - (time.monotonic() - cut_at)))
        during = counts(ctx)
        broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
        queued = int(broker.llen(env["CUSTODIA_CELERY_QUEUE"]))
        figures["during_partition"] = {**during, "queued": queued}
        assert during["recordings"] == 1 + SMALL_SEGMENTS
        # only the big recording's probe and derivation, taken before the cut, may have finished
        assert during["probed"] <= 1 and during["thumbnails"] <= 1, "a partitioned worker did something"
        assert queued >= 2 * SMALL_SEGMENTS, "probe and derivation of each new recording wait in the broker"
        network.mend("worker")
        figures["partition_s"] = round(time.monotonic() - cut_at, 1)
        mended = time.monotonic()
        wait_for("the recordings probed", lambda: counts(ctx)["probed"] == 1 + SMALL_SEGMENTS, 90, alive)
        figures["probed_after_mend_s"] = round(time.monotonic() - mended, 1)
        wait_for("their thumbnails made", lambda: counts(ctx)["thumbnails"] == 1 + SMALL_SEGMENTS, 90, alive)

        # --- 3. the worker cannot reach the S3 host while a third recorder's tasks come ----------------------
        network.block("worker", "s3")
        network.block("s3", "worker")
        blocked = time.monotonic()
        os.rename(third.volume, dock_dir / third.volume.name)  # the API hosts still reach S3
        wait_for("the third recorder's receipt", lambda: receipted(third.serial), 90, alive)
        wait_for("a task that met the unreachable store tried again", lambda: task_runs(worker)["retried"], 60, alive)
        time.sleep(S3_AWAY_S)
        away = counts(ctx)
        figures["s3_unreachable"] = {**away, "incidents": incidents(ctx), "tasks": task_runs(worker)}
        assert away["recordings"] == len(expected) and away["thumbnails"] == 1 + SMALL_SEGMENTS
        assert away["probed"] == 1 + SMALL_SEGMENTS, "a probe without the store"
        assert incidents(ctx) == 0, f"an unreachable store taken for damage: {incident_kinds(ctx)}"
        network.unblock("worker", "s3")
        network.unblock("s3", "worker")
        figures["s3_unreachable_s"] = round(time.monotonic() - blocked, 1)
        mended = time.monotonic()
        n = len(expected)
        wait_for("every recording probed", lambda: counts(ctx)["probed"] == n, 90, alive)
        wait_for("every thumbnail made", lambda: counts(ctx)["thumbnails"] == n, 90, alive)
        figures["derived_after_s3_back_s"] = round(time.monotonic() - mended, 1)
        wait_for("every recording through fixity", lambda: counts(ctx)["fixity_ok"] == n, 90, alive)
        figures["fixity_after_s3_back_s"] = round(time.monotonic() - mended, 1)

        # --- 4. nothing lost, nothing twice ------------------------------------------------------------------
        check_once(ctx, expected, figures)
        check_receipts(station_dir, expected, (big.serial, small.serial, third.serial))
        check_s3_only(env, settings, {k: v[:2] for k, v in expected.items()})
        figures["task_runs"] = task_runs(worker)
        out = procs.run("audit", "verify", env={"CUSTODIA_DATABASE_URL": os.environ["CUSTODIA_DATABASE_URL"]})
        assert out.startswith("OK"), out
        figures["audit"] = out.strip()
    finally:
        for name in ("access.log", "error.log"):  # with the other logs; the prefix itself goes
            if (access_log.parent / name).exists():
                shutil.copy(access_log.parent / name, procs.logs / f"nginx-{name}")
        shutil.rmtree(access_log.parent, ignore_errors=True)
        figures["total_s"] = round(time.monotonic() - t0, 1)
        figures["final"] = counts(ctx)
        ctx.close()
        print("\nhosts can die:", json.dumps(figures, ensure_ascii=False), flush=True)


def tasks_begun(worker: Proc) -> tuple[Counter[str], Counter[str]]:
    """Media tasks the worker received, and those it has not finished yet, by name."""
    received: Counter[str] = Counter()
    running: Counter[str] = Counter()
    for line in worker.log.read_text(errors="replace").splitlines():
        m = re.search(r"Task media\.(\w+)\[[0-9a-f-]+\] (received|succeeded|raised|retry)", line)
        if m:
            received[m[1]] += m[2] == "received"
            running[m[1]] += 1 if m[2] == "received" else -1
    return received, running


def task_runs(worker: Proc) -> dict[str, int]:
    """How the worker's media tasks went: finished, retried after an unreachable service, failed, and
    finished more than once (a message delivered again after the partition: at-least-once delivery,
    which idempotent tasks absorb)."""
    done: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for line in worker.log.read_text(errors="replace").splitlines():
        m = re.search(r"Task media\.\w+\[([0-9a-f-]+)\] (succeeded|raised|retry)", line)
        if m:
            outcomes[m[2]] += 1
            if m[2] == "succeeded":
                done[m[1]] += 1
    return {
        "media_tasks": len(done),
        "retried": outcomes["retry"],
        "failed": outcomes["raised"],
        "run_again": sum(1 for n in done.values() if n > 1),
    }


def check_once(ctx: ServerContext, expected: dict[str, Any], figures: dict[str, Any]) -> None:
    with ctx.sessionmaker() as s:
        recs = s.scalars(select(Recording)).all()
        uploads = s.scalars(select(Upload)).all()
        verified = Counter(
            s.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "recording.verified")).all()
        )
        derived = Counter(s.execute(select(DerivedMedia.recording_id, DerivedMedia.kind)).all())
        transfers = s.scalars(select(Transfer)).all()
        incidents = s.scalar(select(func.count()).select_from(IntegrityIncident))
    assert len(recs) == len(expected) and {r.blake3 for r in recs} == set(expected)
    for r in recs:
        serial, path, fp = expected[r.blake3]
        assert (r.device_serial, r.original_path, r.sha256, r.size) == (serial, path, fp.sha256, fp.size)
        assert r.verified_at is not None and r.probe_state == "done" and r.fixity_state == "ok"
    per_file = Counter((u.transfer_id, u.path) for u in uploads)
    assert set(per_file.values()) == {1}, f"a file was uploaded more than once: {per_file}"
    assert verified == Counter({str(r.id): 1 for r in recs}), verified
    assert set(derived.values()) == {1} and {rid for rid, _ in derived} == {r.id for r in recs}
    assert len(transfers) == 3 and all(t.state == "done" and t.receipt for t in transfers)
    assert incidents == 0
    figures["uploads"] = len(uploads)
    figures["derived"] = sum(derived.values())


def check_receipts(station_dir: Path, expected: dict[str, Any], serials: tuple[str, ...]) -> None:
    """The station holds one receipt per docking, signed by the key it pinned, naming every file's digests."""
    pinned = json.loads((station_dir / "station.json").read_text())["server_public_key"]
    key = documents.load_public_key_b64(pinned)
    with sqlite3.connect(station_dir / "journal.sqlite3") as journal:
        rows = journal.execute("SELECT device_serial, receipt FROM docks ORDER BY docked_at").fetchall()
    assert sorted(serial for serial, _ in rows) == sorted(serials)
    confirmed: dict[str, dict[str, Any]] = {}
    for _serial, receipt in rows:
        files = documents.confirmed_files(json.loads(receipt), key)
        assert not set(files) & set(confirmed)
        confirmed.update(files)
    want = {path: (fp.blake3, fp.sha256, fp.size) for _, path, fp in expected.values()}
    assert {p: (f["blake3"], f["sha256"], f["size"]) for p, f in confirmed.items()} == want
