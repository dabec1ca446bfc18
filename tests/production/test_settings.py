"""Configuration alone makes a production profile: variables, secret files, placeholders refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence_server.config import Settings

PRODUCTION = {
    "CUSTODIA_ENVIRONMENT": "production",
    "CUSTODIA_DATABASE_URL": "postgresql+psycopg://custodia@db.example/custodia",
    "CUSTODIA_STORAGE_BACKEND": "s3",
    "CUSTODIA_S3_ENDPOINT_URL": "https://oss-cn-hangzhou.aliyuncs.com",
    "CUSTODIA_S3_BUCKET": "evidence",
    "CUSTODIA_S3_OBJECT_LOCK_MODE": "COMPLIANCE",
    "CUSTODIA_TASK_MODE": "celery",
    "CUSTODIA_BROKER_URL": "amqp://custodia@mq.example:5672//",
    "CUSTODIA_RESULT_BACKEND": "redis://redis.example:6379/3",
}


@pytest.fixture
def no_secret_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty secrets folder, so this machine's /run/secrets cannot leak into the test."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    monkeypatch.setenv("CUSTODIA_SECRETS_DIR", str(folder))
    return folder


def test_environment_variables_switch_every_engine(monkeypatch, tmp_path, no_secret_dirs: Path) -> None:
    for key, value in {**PRODUCTION, "CUSTODIA_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    (no_secret_dirs / "custodia_s3_secret_access_key").write_text("a-real-secret-of-the-bureau\n")
    s = Settings()
    assert s.database_url.startswith("postgresql+psycopg://")
    assert (s.storage_backend, s.s3_bucket, s.s3_object_lock_mode) == ("s3", "evidence", "COMPLIANCE")
    assert (s.task_mode, s.broker_url, s.result_backend) == (
        "celery",
        PRODUCTION["CUSTODIA_BROKER_URL"],
        PRODUCTION["CUSTODIA_RESULT_BACKEND"],
    )
    assert s.s3_secret_access_key == "a-real-secret-of-the-bureau"  # read from the file, newline stripped


@pytest.mark.parametrize("where", ["CUSTODIA_SECRETS_DIR", "CREDENTIALS_DIRECTORY"])
def test_secrets_come_from_files_and_the_environment_wins(monkeypatch, tmp_path, where: str) -> None:
    folder = tmp_path / "creds"
    folder.mkdir()
    (folder / "custodia_database_url").write_text("postgresql+psycopg://custodia:s3cr3t-from-file@db/custodia")
    (folder / "custodia_metrics_token").write_text("token-from-a-file-0123456789")
    monkeypatch.delenv("CUSTODIA_SECRETS_DIR", raising=False)
    monkeypatch.setenv(where, str(folder))
    monkeypatch.setenv("CUSTODIA_METRICS_TOKEN", "token-from-the-environment-0123")
    s = Settings(data_dir=tmp_path)
    assert s.database_url == "postgresql+psycopg://custodia:s3cr3t-from-file@db/custodia"
    assert s.metrics_token == "token-from-the-environment-0123"


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("database_url", "postgresql+psycopg://custodia:changeme@db/custodia"),
        ("broker_url", "redis://:password@redis:6379/0"),
        ("s3_secret_access_key", "changeme"),
        ("metrics_token", "placeholder"),
    ],
)
def test_placeholder_secrets_are_refused_outside_development(
    tmp_path, no_secret_dirs, environment: str, setting: str, value: str
) -> None:
    base = {k.removeprefix("CUSTODIA_").lower(): v for k, v in PRODUCTION.items()}
    base.update(
        {
            "environment": environment,
            "data_dir": tmp_path,
            "s3_secret_access_key": "a-real-secret-of-the-bureau",
            setting: value,
        }
    )
    with pytest.raises(ValueError, match="placeholder"):
        Settings(**base)
    Settings(**{**base, "environment": "development"})  # a developer's laptop may use them


def test_a_missing_secrets_dir_is_an_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CUSTODIA_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="not a directory"):
        Settings(data_dir=tmp_path)
