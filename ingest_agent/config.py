"""Settings of the ingest agent on a collection workstation (env prefix ``CUSTODIA_AGENT_``)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB


class AgentSettings(BaseSettings):
    """Everything the agent needs; one instance per process."""

    model_config = SettingsConfigDict(env_prefix="CUSTODIA_AGENT_", extra="ignore")

    server_url: str = "http://127.0.0.1:8000"
    #: Holds ``journal.sqlite3``, ``spool/`` and ``station.json`` (token and pinned server key).
    data_dir: Path = Path("/var/lib/custodia-agent")
    #: Mount roots to watch; each new volume below one of them is a docked recorder.
    #: From the environment: a JSON list or paths separated by ``os.pathsep`` or commas.
    dock_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    #: Delete device files once (and only once) a verified receipt confirms them.
    wipe_after_receipt: bool = False
    #: Most bytes the spool may hold; None means "free disk space minus the reserve".
    spool_max_bytes: int | None = None
    #: Free space always left on the spool's file system.
    spool_reserve_bytes: int = 1 * GiB
    #: Largest device file taken as a recording; bigger ones (a corrupt or hostile volume, a sparse
    #: file claiming terabytes) stay on the device and are reported to the server as rejected.
    max_recording_bytes: int = 64 * GiB
    #: Bytes per tus PATCH request.
    # bytes per PATCH: fewer round trips and fsyncs; a cut link loses nothing (the server keeps what
    # arrived and tus resumes at its offset)
    upload_chunk_bytes: int = 128 * MiB
    #: Files of one docking uploaded at once (the server hashes each upload on one core).
    upload_streams: int = Field(default=2, ge=1, le=8)
    #: Bytes per read from the device.
    copy_block_bytes: int = 8 * MiB
    #: A file is copied only once its size and mtime held still this long.
    stability_seconds: float = 2.0
    #: Give up waiting for a file to settle after this long (it is retried at the next docking).
    stability_timeout_seconds: float = 120.0
    #: A docked volume is read only once its tree held still this long (files arrive over seconds).
    settle_seconds: float = 2.0
    #: Read it anyway after this long, even if it is still changing.
    settle_timeout_seconds: float = 60.0
    #: Attempts to identify a docked recorder (each after the volume settled again) before the dock fails.
    identify_attempts: int = 3
    #: Seconds between two attempts.
    identify_retry_seconds: float = 3.0
    station_name: str = Field(default_factory=socket.gethostname)
    #: Preferred driver family name, e.g. ``"folder"``; None lets the registry decide.
    driver: str | None = None
    poll_interval: float = 1.0
    debounce_seconds: float = 1.0
    http_timeout_seconds: float = 60.0
    #: Attempts per HTTP request on connection errors and 5xx, with growing back-off.
    retry_attempts: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    #: Attempts to resume one upload (HEAD then PATCH) before the file waits for the next pass.
    upload_resume_attempts: int = 8
    #: Smallest interval between two progress reports to the server (seconds).
    progress_interval: float = 0.5
    #: How often the running agent retries unfinished transfers and sends a heartbeat.
    recover_interval: float = 60.0

    # --- USB recorders that need a vendor handshake (ingest_agent.usb_dock) ---
    #: Watch USB for recorders on the allow-list; every other USB device is ignored and logged.
    usb_docking: bool = False
    #: Directories of a bureau's own device profiles (``*.json``; a name replaces a shipped profile).
    usb_profile_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    #: Extra allow-list entries ``VID:PID=profile`` or ``scsi:STRING=profile`` (comma-separated from env).
    usb_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Seconds to wait for a recorder to come back as a disk after the switch (None: the profile's).
    usb_reenumerate_timeout_seconds: float | None = None
    #: Device passwords per family and per serial (JSON objects from env). There is never a default.
    device_passwords_family: dict[str, SecretStr] = Field(default_factory=dict)
    device_passwords_serial: dict[str, SecretStr] = Field(default_factory=dict)
    #: JSON file ``{"family": {...}, "serial": {...}}`` readable by the agent's user only; read at each dock.
    device_passwords_file: Path | None = None
    #: When the station sets a recorder's clock: ``never``, ``if_off`` (beyond the tolerance), ``always``.
    device_clock_policy: Literal["never", "if_off", "always"] = "if_off"
    device_clock_tolerance_seconds: float = 2.0
    #: Never set a recorder's clock from a station that knows its own clock is unsynchronised.
    device_clock_requires_station_sync: bool = True

    @field_validator("dock_roots", "usb_profile_dirs", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            parts = text.replace(",", os.pathsep).split(os.pathsep)
            return [p.strip() for p in parts if p.strip()]
        return value

    @field_validator("usb_allow", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("upload_chunk_bytes", "copy_block_bytes")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 64 * 1024:
            raise ValueError("must be at least 64 KiB")
        return value

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def station_file(self) -> Path:
        return self.data_dir / "station.json"

    def device_password(self, family: str, serials: list[str] | tuple[str, ...] = ()) -> str | None:
        """The password for a device (by any of its serials), else for its family; None if none is set."""
        by_family = {k: v.get_secret_value() for k, v in self.device_passwords_family.items()}
        by_serial = {k: v.get_secret_value() for k, v in self.device_passwords_serial.items()}
        if self.device_passwords_file is not None:
            stored = _read_password_file(self.device_passwords_file)
            by_family.update(stored.get("family", {}))
            by_serial.update(stored.get("serial", {}))
        for serial in serials:
            if by_serial.get(serial):
                return by_serial[serial]
        return by_family.get(family) or None

    def prepare_dirs(self) -> None:
        """Create the data and spool directories, readable by the agent's user only."""
        for d in (self.data_dir, self.spool_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)


def _read_password_file(path: Path) -> dict[str, dict[str, str]]:
    """The device passwords file; refused when others than its owner could read it."""
    st = os.stat(path)
    if st.st_mode & 0o077:
        raise PermissionError(f"{path} is readable by others than its owner (chmod 600 it)")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with 'family' and 'serial' maps")
    return {k: {str(a): str(b) for a, b in (data.get(k) or {}).items()} for k in ("family", "serial")}
