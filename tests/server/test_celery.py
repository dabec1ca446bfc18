"""Background tasks on real Celery workers, with Redis and with RabbitMQ as the broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.server.test_media import wait_probed
from tests.server.test_station_flow import Station
from tests.support import services
from tests.support.live import LiveServer

BROKERS = {
    "redis": ("redis://127.0.0.1:6379/14", 6379, "Redis"),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672, "RabbitMQ"),
}


@pytest.mark.redis
@pytest.mark.ffmpeg
@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_probe_runs_on_a_celery_worker(broker: str, tmp_path, sqlite_url: str, tiny_video) -> None:
    url, port, name = BROKERS[broker]
    services.require_port("127.0.0.1", port, name)
    queue = f"custodia-test-{uuid.uuid4().hex[:8]}"
    server = LiveServer(
        data_dir=tmp_path / "server",
        database_url=sqlite_url,
        env={"CUSTODIA_TASK_MODE": "celery", "CUSTODIA_BROKER_URL": url, "CUSTODIA_CELERY_QUEUE": queue},
    )
    server.data_dir.mkdir(parents=True)
    server.bootstrap()
    server.start()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evidence_server.background.worker:celery_app",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            queue,
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env={**os.environ, **server.settings_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        st = Station(server)
        data = tiny_video.read_bytes()
        path = f"DCIM/20261121/{tiny_video.name}"
        st.open({path: data})
        assert st.upload(path, data).headers["Custodia-Verified"] == "true"
        rec = wait_probed(server, timeout=60)[tiny_video.name]
        assert rec["probe_state"] == "done" and rec["codec"] == "h264"
    finally:
        server.stop()
        worker.terminate()
        out, _ = worker.communicate(timeout=20)
    assert b"Traceback" not in out, out.decode(errors="replace")[-3000:]
