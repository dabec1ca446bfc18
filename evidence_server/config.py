"""Server settings: one class, environment prefix ``CUSTODIA_``, or files under a secrets directory."""

from __future__ import annotations

import ipaddress
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from evidence_server.cases.numbers import DEFAULT_CASE_NUMBER_PATTERN, valid_pattern
from evidence_server.retention.rules import load_policy

PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password", "placeholder", "xxx"}


def secrets_dirs() -> list[Path]:
    """Where secret files are read from: ``CUSTODIA_SECRETS_DIR`` if set, else ``/run/secrets`` (Docker,
    Compose) and systemd's ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``), those that exist. A file
    named like the variable (``custodia_database_url``) holds its value; the environment wins over files."""
    explicit = os.environ.get("CUSTODIA_SECRETS_DIR")
    if explicit:
        if not Path(explicit).is_dir():
            raise ValueError(f"CUSTODIA_SECRETS_DIR={explicit} is not a directory")
        return [Path(explicit)]
    found = [Path("/run/secrets"), Path(os.environ.get("CREDENTIALS_DIRECTORY") or "/nonexistent")]
    return [p for p in found if p.is_dir()]


def url_password(url: str | None) -> str | None:
    """The password in a database or broker URL, if it has one."""
    if not url or "://" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def trusted_networks(values: list[str] | str) -> list[str]:
    """The trusted proxies (a list, a JSON list or comma-separated), each checked to be an address or
    network; "*" (anyone) is refused."""
    if isinstance(values, str):
        values = json.loads(values) if values.strip().startswith("[") else [v for v in values.split(",") if v.strip()]
    out = []
    for value in values:
        if value.strip() in {"*", "0.0.0.0/0", "::/0"}:
            raise ValueError("CUSTODIA_TRUSTED_PROXIES may not trust every address: name the proxy's address")
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"CUSTODIA_TRUSTED_PROXIES: {value!r} is not an address or network") from exc
    return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CUSTODIA_",
        env_file=None,
        extra="ignore",
        secrets_dir=None,
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""  # default: SQLite under data_dir
    # PostgreSQL connections each server process keeps, and may open beyond that (closing each when it comes
    # back to a full pool). The pool keeps what a steady load uses: a load beyond it opened and closed a
    # connection for every dozen reads, at 0.4-0.8 ms of PostgreSQL's CPU a read (P6; tests/server/test_pool_reuse.py).
    # On a small host fewer give more: sessions queue in the pool, not as backends fighting for the same cores.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path | None = None  # default: data_dir/objects
    staging_dir: Path | None = None  # default: data_dir/staging (tus uploads in progress)
    s3_endpoint_url: str | None = None
    s3_bucket: str = "custodia-evidence"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_object_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] | None = None
    s3_object_lock_days: int = 180

    task_mode: Literal["inprocess", "celery"] = "inprocess"
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None
    celery_queue: str = "custodia"
    celery_visibility_timeout_s: int = 3600  # Redis broker: a task a dead worker held runs again after this
    celery_broker_transport_options: dict[str, Any] = {}  # more kombu transport options (JSON)

    # observability: logs as text or one JSON object per line; /metrics for a bearer CUSTODIA_METRICS_TOKEN
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    metrics_token: str | None = None  # unset: /metrics answers 403
    metrics_totals_max_age_s: float = 60.0  # totals over every recording: read at most this often (0: every scrape)
    # the fleet of stations: heartbeat samples kept, when a station counts as silent or its spool as growing
    fleet_history_hours: int = 72
    fleet_silent_after_s: int = 600
    fleet_growth_window_s: int = 3600
    fleet_growth_min_bytes: int = 1024**3
    fleet_growth_min_samples: int = 4
    fleet_low_free_bytes: int = 10 * 1024**3

    signing_key_file: Path | None = None  # default: data_dir/keys/server-ed25519.pem
    # what signs receipts, checkpoints, packages and lists: Ed25519, or SM2 (GB/T 32918, with SM3) for
    # Chinese reviewers; the Ed25519 key is kept either way (older checkpoints, push tokens)
    signing_alg: Literal["Ed25519", "SM2"] = "Ed25519"
    sm2_key_file: Path | None = None  # default: data_dir/keys/server-sm2.pem (made on first start with SM2)
    session_hours: int = 12
    cookie_secure: bool = True

    max_upload_bytes: int = 256 * 1024**3
    # abuse limits (R10): account lockout, login and upload rates, request bodies (see evidence_server/limits.py)
    login_max_failures: int = 5  # failed logins in a row before the account locks
    login_lockout_minutes: int = 15
    login_failures_per_address: int = 20  # failed logins one client address may make per window ...
    login_failure_window_s: int = 600  # ... after which its logins get 429 until the window passes
    upload_creates_per_minute: int = 600  # new tus uploads per station per minute
    max_open_uploads: int = 2000  # unfinished uploads per station (each holds staging space)
    # push ingest (evidence_server/push): objects one recorder may send per minute (503 past it), and the
    # staging space kept free beyond an object's length (507 below it, before a byte is taken)
    push_objects_per_minute: int = 240
    push_rate_window_s: float = 60.0  # the window the rate above counts in (a minute unless testing)
    push_staging_reserve_bytes: int = 256 * 1024**2
    push_token_hours: float = 24.0
    # an unfinished upload untouched this long is void and its staged bytes freed (tus "expiration")
    upload_expiry_hours: float = 72.0  # 0: never
    upload_sweep_interval_s: int = 3600  # 0: no scheduled sweeps
    max_request_body_bytes: int = 64 * 1024**2  # any request but a tus PATCH (its Upload-Length bounds it)
    # anonymous traffic (issue 15), per API process: public calls and failed authentications per client
    # address and minute; attempts at login and enrolment per minute for all clients together. 0: off.
    anonymous_requests_per_minute: int = 300
    credential_attempts_per_minute: int = 600
    # repeated anonymous failures: the first of a kind (action, client, subject) in a window is an audit
    # entry, the rest a count written as one "audit.repeated" entry when the window closes; past this many
    # kinds per action and window, further failures share one count (evidence_server/audit/tally.py)
    audit_tally_window_s: int = 300
    audit_tally_max_keys: int = 50
    # the proxies whose X-Forwarded-For is believed (addresses or networks, e.g. ["127.0.0.1"]): a request
    # from anywhere else is its own client, whatever it says (evidence_server/proxies.py). Never "*".
    trusted_proxies: Annotated[list[str], NoDecode] = []  # JSON list or comma-separated
    # the embedded server (uvicorn, evidence_server/serving.py): request line and header sizes, the time a
    # client may take to send its request head, and to send the next body bytes, and open connections
    max_request_line_bytes: int = 8 * 1024
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout_s: float = 15.0
    body_idle_timeout_s: float = 120.0
    max_connections: int = 1000
    station_token_grace_hours: int = 24  # a rotated token still works until the new one is used, or this long
    enrolment_code_hours: int = 24
    ffprobe_bin: str = "ffprobe"
    default_timezone: str = "Asia/Shanghai"

    # the checkout ledger (R1-R3): pre-checkout thresholds and the device allocation per unit
    min_battery_percent: int = 60
    min_free_storage_bytes: int = 4 * 1024**3
    max_clock_offset_seconds: float = 5.0  # calibrated means seconds: checks at checkout, flags at every dock
    devices_per_unit: int = 2
    readings_max_age_seconds: int = 900  # a station reading older than this is not used at checkout
    late_entry_grace_minutes: int = 30  # an entry recorded later than this after it happened is "late"

    # the audit log (R10): checkpoint origin (a schema-less URL naming this log), schedule, RFC 3161 TSA
    audit_origin: str = "custodia.local/audit"
    audit_checkpoint_interval_s: int = 3600  # 0: no scheduled checkpoints (on demand only)
    audit_sequence_interval_s: int = 10  # PostgreSQL: place entries a crashed request committed but left pending
    audit_tsa_url: str | None = None
    audit_tsa_timeout_s: float = 10.0
    # evidence rows bound to the log: how often every recording, ledger entry, case link, hold and
    # disposal is checked against the audit entries that recorded it
    binding_check_interval_s: int = 86400  # 0: no scheduled checks (`custodia audit verify` still runs it)
    # court packages: the RFC 3161 authority that time-stamps each package's manifest and checkpoint
    # (None: the audit log's, audit_tsa_url; neither: no time-stamps)
    package_tsa_url: str | None = None
    # the imprint hash of every RFC 3161 request: sha256, or sm3 for an authority that stamps SM3 (GM/T 0033)
    tsa_hash: Literal["sha256", "sm3"] = "sha256"
    # fixity (R7): re-read stored recordings at this pace and check both fingerprints
    fixity_interval_s: int = 3600  # 0: no scheduled sweeps
    fixity_files_per_run: int = 50
    fixity_bytes_per_second: int = 50 * 1024**2  # 0: unthrottled
    fixity_orphan_grace_s: int = 3600  # an object younger than this may still be getting its record
    # custody (R7): every read of original bytes is checked against a block map made on receipt; maps of
    # recordings stored before there were maps are made in the background, from verified bytes
    block_map_block_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    block_map_backfill_interval_s: int = 600  # 0: never scheduled (a ranged read still makes its map)
    block_map_backfill_files_per_run: int = 50
    media_profile_backfill_interval_s: int = 900  # recordings probed before profiles existed (0: never)
    # SM3 (GB/T 32905) computed in the pass that verifies each upload; off, a site whose uploads are bound by
    # the server's CPU leaves it to fixity.backfill_sm3, which reads the stored copy once more later
    sm3_on_receipt: bool = True
    # SM3 for recordings stored before the server computed it on receipt (fixity.backfill_sm3)
    sm3_backfill_interval_s: int = 600  # 0: never scheduled (the fixity sweep also fills it in as it passes)
    sm3_backfill_files_per_run: int = 50
    scheduler: bool | None = None  # in-process periodic jobs; default: on unless environment is "test"

    # cases (R5): the bureau's case-number format (see evidence_server/cases/numbers.py), how far a
    # recording's corrected start may lie outside a checkout to be linked to its case, when a transfer
    # without an enforcement matter or a case is listed as incomplete, the shortest gap a timeline shows
    case_number_pattern: str = DEFAULT_CASE_NUMBER_PATTERN
    case_link_tolerance_s: int = 300
    transfer_task_grace_hours: float = 24.0
    #: Case handlers' home page counts recordings still in no case this many days after they arrived.
    home_unlinked_days: int = 3
    timeline_min_gap_s: int = 60
    ffmpeg_bin: str = "ffmpeg"

    # compliance (R8, R9): the thresholds of the violation rules (evidence_server/compliance/facts.py)
    compliance_transfer_hours: float = 24.0  # transfer within this long after the officer is back
    compliance_field_grace_hours: float = 0.0  # added to the deadline when no return is known (field trips)
    compliance_overdue_grace_hours: float = 2.0  # a device not back this long after its expected return
    compliance_min_recorded_ratio: float = 0.5  # footage shorter than this share of the checkout is "short"
    compliance_session_join_s: float = 3.0  # the next segment of one session starts within this
    compliance_session_max_gap_s: float = 900.0  # a longer pause after a full-length segment is a new session
    compliance_edit_time_tolerance_s: float = 10.0  # container creation time vs the file name
    compliance_bitrate_factor: float = 4.0  # a bitrate this far from the device's median is suspicious
    compliance_editor_encoders: str = (
        r"(?i)(^|\b)(lavf|lavc|handbrake|adobe|premiere|after effects|final cut|davinci|avidemux|shotcut|"
        r"kdenlive|movavi|camtasia|imovie|vegas|capcut|format factory)"
    )
    compliance_family_encoders: dict[str, str] = {}  # device family → regex of the encoder tag it writes
    compliance_family_resolutions: dict[str, list[str]] = {}  # device family → ["1920x1080", …]
    compliance_bulk_download_threshold: int = 50  # recordings one user may download or export in a day
    compliance_access_exempt_roles: list[str] = []
    compliance_scan_interval_s: int = 3600  # the scheduled full scan; 0: off
    compliance_incremental: bool = True  # scan a device after each transfer and ledger change
    compliance_scan_workers: int = 0  # processes for a large full scan on PostgreSQL; 0: up to 4, one per CPU

    # retention (issue 7): the default policy (JSON, keys of retention.rules.RetentionPolicy; unknown keys
    # are refused; a policy saved from the pages replaces it), how often the job runs and for how long at
    # most, and whether an approved disposal may bypass a GOVERNANCE lock (a COMPLIANCE lock never)
    retention_policy: dict[str, Any] = {}
    retention_interval_s: int = 3600  # 0: no scheduled runs
    retention_run_seconds: float = 600.0
    retention_bypass_governance: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # secret files are looked for at each Settings() (tests and systemd set the directory late)
        files = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dirs() or None)
        return init_settings, env_settings, dotenv_settings, files

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: Any) -> list[str]:
        return trusted_networks(value)

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_placeholders(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'custodia.sqlite3'}"
        self.storage_dir = (self.storage_dir or self.data_dir / "objects").expanduser().resolve()
        self.staging_dir = (self.staging_dir or self.data_dir / "staging").expanduser().resolve()
        self.signing_key_file = self.signing_key_file or self.data_dir / "keys" / "server-ed25519.pem"
        self.sm2_key_file = self.sm2_key_file or self.data_dir / "keys" / "server-sm2.pem"
        valid_pattern(self.case_number_pattern)
        load_policy(self.retention_policy)
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("production needs CUSTODIA_DATABASE_URL (PostgreSQL), not the embedded SQLite")
        if self.environment != "development":
            self._refuse_placeholders()
        return self

    def _refuse_placeholders(self) -> None:
        broker = self.broker_url if self.task_mode == "celery" else None
        secrets = {
            "CUSTODIA_DATABASE_URL password": url_password(self.database_url),
            "CUSTODIA_BROKER_URL password": url_password(broker),
            "CUSTODIA_RESULT_BACKEND password": url_password(self.result_backend),
            "CUSTODIA_METRICS_TOKEN": self.metrics_token,
        }
        if self.storage_backend == "s3":  # unset: boto3 finds credentials itself (instance role, ~/.aws)
            secrets["CUSTODIA_S3_SECRET_ACCESS_KEY"] = self.s3_secret_access_key
        for name, value in secrets.items():
            if value is not None and value.strip().lower() in PLACEHOLDERS:
                raise ValueError(f"{name} is a placeholder: set a real secret (environment {self.environment})")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise ValueError("CUSTODIA_METRICS_TOKEN is too short: use at least 16 random characters")

    @property
    def scheduler_enabled(self) -> bool:
        """Run periodic jobs in this process (Celery deployments run them with ``celery beat``)."""
        wanted = self.scheduler if self.scheduler is not None else self.environment != "test"
        return wanted and self.task_mode == "inprocess"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
