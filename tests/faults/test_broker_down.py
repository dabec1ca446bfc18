"""The broker is down: uploads still succeed, and the tasks they send run once the broker is back.

A private Redis on a free port is stopped (the shared one is never touched); a Celery worker runs
throughout and reconnects by itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.faults.conftest import PrivateRedis, count
from tests.server.test_media import wait_probed
from tests.server.test_station_flow import Station
from tests.support.live import LiveServer


@pytest.mark.ffmpeg
def test_tasks_sent_while_the_broker_is_down_run_once_it_is_back(
    private_redis: PrivateRedis, tmp_path: Path, sqlite_url: str, tiny_video: Path
) -> None:
    queue = f"custodia-faults-{uuid.uuid4().hex[:8]}"
    server = LiveServer(
        data_dir=tmp_path / "server",
        database_url=sqlite_url,
        env={"CUSTODIA_TASK_MODE": "celery", "CUSTODIA_BROKER_URL": private_redis.url, "CUSTODIA_CELERY_QUEUE": queue},
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
        private_redis.stop()  # the broker goes down
        count("faults injected: broker down")

        started = time.monotonic()
        answer = st.upload(path, data)
        assert answer.status_code == 204 and answer.headers["Custodia-Verified"] == "true"
        assert time.monotonic() - started < 20  # the upload did not hang on the broker
        (rec,) = server.get("/api/v1/recordings").json()["items"]
        assert rec["probe_state"] == "pending"
        assert st.complete({path: data})["missing"] == []
        time.sleep(1.0)
        assert server.get(f"/api/v1/recordings/{rec['id']}").json()["probe_state"] == "pending"

        private_redis.start()  # back, empty (no persistence): the held tasks are published again
        probed = wait_probed(server, timeout=120)[tiny_video.name]
        assert probed["probe_state"] == "done" and probed["codec"] == "h264"
        count("faults survived: broker down")
    finally:
        server.stop()
        worker.terminate()
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_held_tasks_are_published_in_order_once_the_broker_answers(tmp_path: Path) -> None:
    from evidence_server.background.dispatch import Dispatcher
    from evidence_server.config import Settings
    from evidence_server.context import ServerContext

    dispatcher = Dispatcher(ServerContext(Settings(data_dir=tmp_path, task_mode="celery")))
    dispatcher.retry_interval = 0.01
    down, published = True, []

    def publish(name: str, args: tuple) -> None:
        if down:
            raise ConnectionError("broker unreachable")
        published.append((name, args))

    dispatcher._publish = publish  # type: ignore[method-assign]
    for i in range(5):
        dispatcher.send("media.probe_recording", i)  # never raises while the broker is down
    assert len(dispatcher.held) == 5 and published == []
    down = False
    deadline = time.monotonic() + 10
    while dispatcher.held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert published == [("media.probe_recording", (i,)) for i in range(5)]
    dispatcher.send("media.probe_recording", 5)  # the broker is up: straight through
    assert published[-1] == ("media.probe_recording", (5,))
    dispatcher.shutdown()
