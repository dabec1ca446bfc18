"""No default credentials anywhere; secrets come only from the environment or from files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from evidence_server.accounts.models import User
from evidence_server.config import PLACEHOLDERS, Settings
from ingest_agent.config import AgentSettings
from tests.support.databases import SqliteTemplates

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (
    "custodia_wire",
    "custodia_cli",
    "device_drivers",
    "ingest_agent",
    "evidence_server",
    "retention",
    "web_ui",
    "deploy",
    "scripts",
)
SECRET_WORDS = re.compile(r"(password|passwd|secret|token|api_?key|access_key)", re.I)
#: Values that are no secret: placeholders the settings refuse, references, token prefixes, file names.
HARMLESS = re.compile(r"^(\$|\{|\[|<|changeme|change-me|/run/secrets|cus_[usp]_|.*\.(pem|json|txt|key)$)", re.I)
#: ``NAME=literal`` or ``name: literal`` in env, YAML, shell and unit files.
CONFIG_LINE = re.compile(r"""^\s*(export\s+)?(?P<name>[A-Za-z_][\w.-]*)\s*[:=]\s*["']?(?P<value>[^\s"'#]{4,})""")


def shipped_files() -> list[Path]:
    return [
        p
        for top in SHIPPED
        for p in (ROOT / top).rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in {".pyc", ".json", ".po", ".svg", ".css", ".js", ".html", ".md"}
    ]


def python_literals(source: str) -> list[tuple[int, str, str]]:
    """(line, name, value) of every string constant given to a secret-sounding name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        pairs: list[tuple[ast.AST, ast.AST | None]] = []
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign):
            pairs = [(node.target, node.value)]
        elif isinstance(node, ast.keyword) and node.arg:
            pairs = [(ast.Name(id=node.arg), node.value)]
        elif isinstance(node, ast.Dict):
            pairs = list(zip(node.keys, node.values, strict=True))  # type: ignore[arg-type]
        for target, value in pairs:
            name = getattr(target, "id", None) or getattr(target, "attr", None) or getattr(target, "value", None)
            if (
                isinstance(name, str)
                and SECRET_WORDS.search(name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and len(value.value) >= 4
            ):
                found.append((value.lineno, name, value.value))
    return found


def test_no_secret_is_written_into_shipped_code_or_configuration() -> None:
    suspicious = []
    for path in shipped_files():
        text = path.read_text(errors="replace")
        if path.suffix == ".py":
            hits = python_literals(text)
        else:
            hits = [
                (n, m["name"], m["value"])
                for n, line in enumerate(text.splitlines(), 1)
                if (m := CONFIG_LINE.match(line)) and not line.lstrip().startswith("#")
            ]
        suspicious += [
            f"{path.relative_to(ROOT)}:{n}: {name} = {value[:40]!r}"
            for n, name, value in hits
            if SECRET_WORDS.search(name)
            and not name.lower().endswith("_id")
            and not HARMLESS.match(value)
            and value.strip().lower() not in PLACEHOLDERS
        ]
    assert suspicious == [], "\n".join(suspicious)


@pytest.mark.parametrize("settings_cls", [Settings, AgentSettings])
def test_no_setting_has_a_default_secret(settings_cls: type) -> None:
    for name, field in settings_cls.model_fields.items():
        if SECRET_WORDS.search(name) and not name.endswith(("_file", "_dir", "_id", "_hours", "_grace_hours")):
            default = field.get_default(call_default_factory=True)
            assert not default, f"{settings_cls.__name__}.{name} defaults to {default!r}"


def test_a_fresh_database_has_no_account_at_all(tmp_path: Path, sqlite_templates: SqliteTemplates) -> None:
    engine = create_engine(sqlite_templates.fresh(tmp_path))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == 0
    engine.dispose()


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDERS - {""}))
def test_placeholder_secrets_are_refused_outside_development(tmp_path: Path, placeholder: str) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        Settings(
            environment="production",
            data_dir=tmp_path,
            database_url=f"postgresql+psycopg://custodia:{placeholder}@db/custodia",
        )


def test_secrets_are_read_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "custodia_metrics_token").write_text("a-real-token-from-a-file-0123456789")
    monkeypatch.setenv("CUSTODIA_SECRETS_DIR", str(secrets))
    monkeypatch.delenv("CUSTODIA_METRICS_TOKEN", raising=False)
    assert Settings(data_dir=tmp_path).metrics_token == "a-real-token-from-a-file-0123456789"


def test_the_scanner_finds_a_planted_secret() -> None:
    planted = 'ADMIN_PASSWORD = "hunter2hunter2"\nconnect(password="s3cr3t-value")\ncfg = {"api_key": "abcd1234"}\n'
    assert sorted(name for _, name, _ in python_literals(planted)) == ["ADMIN_PASSWORD", "api_key", "password"]
    assert CONFIG_LINE.match("CUSTODIA_S3_SECRET_ACCESS_KEY=minio-secret-1")
