"""The message catalogue: complete in both languages, and every key the pages use exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from evidence_server.accounts.models import Role
from evidence_server.transfers.service import PROGRESS_STATES
from web_ui import i18n
from web_ui.nav import NAV

WEB_UI = Path(i18n.__file__).parent
PROBE_STATES = ("pending", "done", "failed", "not_media")


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = i18n.catalogue("zh"), i18n.catalogue("en")
    assert sorted(set(zh) - set(en)) == [], "missing in en"
    assert sorted(set(en) - set(zh)) == [], "missing in zh"


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES))
def test_no_message_is_empty_and_placeholders_agree(lang: str) -> None:
    messages, reference = i18n.catalogue(lang), i18n.catalogue(i18n.DEFAULT_LANG)
    for key, message in messages.items():
        assert message.strip(), f"{lang}:{key} is empty"
        assert placeholders(message) == placeholders(reference[key]), f"{lang}:{key} placeholders differ"


def used_keys() -> set[str]:
    """Literal keys in templates (``t("…")``) and in the page code (message/error/title keys)."""
    keys: set[str] = set()
    for template in (WEB_UI / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""", text))
    for module in WEB_UI.rglob("*.py"):
        source = module.read_text(encoding="utf-8")
        audit_actions = set(re.findall(r'audit\([^,]+,\s*"([^"]+)"', source))
        keys |= set(re.findall(r'"([a-z]+\.[a-z_]+)"', source)) - audit_actions
    keys |= {entry.label_key for entry in NAV}
    keys |= {f"role.{r.value}" for r in Role} | {f"lang.{code}" for code in i18n.LANGUAGES}
    keys |= {f"state.{s}" for s in PROGRESS_STATES | {"docked"}} | {f"probe.{s}" for s in PROBE_STATES}
    namespaces = {key.split(".")[0] for key in i18n.catalogue("zh")}
    return {key for key in keys if key.split(".")[0] in namespaces and not key.endswith(".html")}


def test_every_key_the_pages_use_is_in_the_catalogue() -> None:
    keys = used_keys()
    assert len(keys) > 50  # the scan found the templates
    assert sorted(keys - set(i18n.catalogue("zh"))) == []


def test_chinese_is_the_default_and_unknown_languages_fall_back_to_it() -> None:
    assert i18n.choose_lang(None) == "zh"
    assert i18n.choose_lang("en") == "en"
    assert i18n.choose_lang("fr") == "zh"
    assert i18n.choose_lang("../../etc/passwd") == "zh"
    assert i18n.Translator("zh").html_lang == "zh-CN"


def test_translate_formats_and_survives_a_missing_key() -> None:
    assert i18n.translate("zh", "recordings.total", n=3) == "共 3 条记录"
    assert i18n.translate("en", "recordings.total", n=3) == "3 recordings"
    assert i18n.translate("en", "no.such_key") == "no.such_key"
