"""Shared fixtures. Feature-specific fixtures live in the conftest of each test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import services
from tests.support.databases import PostgresTemplates, SqliteTemplates
from tests.support.live import LiveServer


@pytest.fixture(scope="session")
def ffmpeg() -> None:
    """ffmpeg and ffprobe are present (Debian package ffmpeg)."""
    services.require_tool("ffmpeg", "ffprobe")


# --- databases and live servers ---------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[PostgresTemplates]:
    templates = PostgresTemplates()
    yield templates
    templates.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates,
) -> str:
    """A fresh, migrated database; tests using it run once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_templates.fresh(tmp_path / "db")
    return postgres_templates.fresh()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_templates: SqliteTemplates) -> str:
    return sqlite_templates.fresh(tmp_path / "db")


def _live(tmp_path: Path, url: str, mode: str = "thread", **env: str) -> LiveServer:
    server = LiveServer(data_dir=tmp_path / "server", database_url=url, mode=mode, env=env)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.bootstrap()
    return server.start()


@pytest.fixture
def live_server(tmp_path: Path, sqlite_url: str) -> Iterator[LiveServer]:
    """A real server (uvicorn in a thread) on SQLite and local storage, with admin/U1 bootstrapped."""
    server = _live(tmp_path, sqlite_url)
    yield server
    server.stop()


@pytest.fixture
def live_server_any_db(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """Like live_server, once on SQLite and once on PostgreSQL."""
    server = _live(tmp_path, database_url)
    yield server
    server.stop()


@pytest.fixture
def live_server_process(tmp_path: Path, sqlite_url: str) -> Iterator[LiveServer]:
    """A real server as a child process, so a test can SIGKILL and restart it."""
    server = _live(tmp_path, sqlite_url, mode="process")
    yield server
    server.stop()


# --- object storage ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3 server on a free loopback port; yields its endpoint URL."""
    import shutil
    import subprocess
    import sys
    import time

    import httpx

    from tests.support.live import free_port

    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if exe is None:
        services.missing("moto's standalone server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"moto_server did not start: {log.read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(moto_s3: str) -> str:
    """A fresh bucket with Object Lock enabled on the moto server."""
    import uuid

    import boto3

    name = f"evidence-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


# --- media ------------------------------------------------------------------------------------


def make_video(
    path: Path,
    *,
    seconds: float = 1.0,
    codec: str = "libx264",
    size: str = "160x120",
    creation_time: str = "2026-11-21T01:00:00Z",
    encoder: str | None = "DV16 Recorder",
) -> Path:
    """A real MP4 made by ffmpeg (test pattern + tone) with a container creation time."""
    import subprocess

    cmd = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=15:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
        "-c:v",
        codec,
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "-metadata",
        f"creation_time={creation_time}",
    ]
    if encoder:
        cmd += ["-fflags", "+bitexact", "-metadata:s:v", f"encoder={encoder}"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def tiny_video(ffmpeg: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "DSJ0001_102345_20261121090000_0001.MP4")
