"""Recorder folders under tmp_path, a journal, a spool, and a station whose server is unreachable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_wire.documents import key_id, public_key_b64
from device_drivers.folder import FolderDriver
from ingest_agent.client import StationCredentials
from ingest_agent.config import AgentSettings
from ingest_agent.copy import Spool
from ingest_agent.journal import Journal
from ingest_agent.transfer import Station
from tests.support.live import free_port

SERIAL = "DSJ0001"
OFFICER = "102345"


@dataclass
class Recorder:
    """A recorder's volume as a folder: ``add`` writes a recording with a GA/T 947 style name."""

    root: Path

    def add(self, seq: int, size: int, day: str = "20261120", data: bytes | None = None) -> str:
        name = f"{SERIAL}_{OFFICER}_{day}0930{seq:02d}_{seq:04d}.MP4"
        rel = f"DCIM/{day}/{name}"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else os.urandom(size))
        return rel

    def path(self, rel: str) -> Path:
        return self.root / rel

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Every file's bytes and mtime: what "the device is untouched" compares."""
        return {
            str(p.relative_to(self.root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def driver(self) -> FolderDriver:
        return FolderDriver(self.root, serial=SERIAL, officer_no=OFFICER)


class Tampering:
    """Wraps a real driver; after the first block is read, ``action`` runs (append, touch, unplug...)."""

    def __init__(self, driver: Any, action: Any) -> None:
        self.driver, self.action = driver, action

    def __enter__(self) -> Tampering:
        self.driver.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.driver, name)

    def open_recording(self, path: str) -> Any:
        source, action = self.driver.open_recording(path), self.action

        class Source:
            reads = 0

            def readinto(self, view: memoryview) -> int:
                Source.reads += 1
                if Source.reads == 2:
                    action()
                return int(source.readinto(view))

            def __enter__(self) -> Source:
                return self

            def __exit__(self, *exc: object) -> None:
                source.close()

        return Source()


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    root = tmp_path / "media" / f"ZFY_{SERIAL}"
    root.mkdir(parents=True)
    return Recorder(root)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", max_bytes=None, reserve_bytes=0)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


@pytest.fixture
def settings(tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        server_url=f"http://127.0.0.1:{free_port()}",
        data_dir=tmp_path / "agent",
        stability_seconds=0.0,
        spool_reserve_bytes=0,
        retry_attempts=1,
        retry_base_delay=0.01,
        upload_resume_attempts=0,
        progress_interval=0.0,
        station_name="test-station",
    )


@pytest.fixture
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def offline_station(settings: AgentSettings, server_key: Ed25519PrivateKey) -> Iterator[Station]:
    """A station enrolled with a server that is not running (connection refused)."""
    creds = StationCredentials(
        station_id="1",
        station_name="test-station",
        token="cus_s_test",
        server_public_key=public_key_b64(server_key.public_key()),
        server_key_id=key_id(server_key.public_key()),
        server_url=settings.server_url,
    )
    settings.prepare_dirs()
    creds.save(settings.station_file)
    station = Station.open(settings)
    yield station
    station.close()
