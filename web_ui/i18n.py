"""The message catalogue: every visible string of the pages, in Chinese (the default) and English.

Catalogues are flat JSON files under ``locales/`` keyed by dotted message keys; values are
``str.format`` templates. The language comes from the ``lang`` cookie, falling back to Chinese.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from fastapi import Request

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"
LANG_COOKIE = "lang"
DEFAULT_LANG = "zh"
#: Catalogue code → the value of ``<html lang>``.
LANGUAGES: dict[str, str] = {"zh": "zh-CN", "en": "en"}


@cache
def catalogue(lang: str) -> dict[str, str]:
    """``locales/<lang>.json`` plus every ``locales/<lang>.<part>.json`` (one per group of pages, so
    that pages added side by side do not all edit one file)."""
    messages: dict[str, str] = {}
    for path in [LOCALES_DIR / f"{lang}.json", *sorted(LOCALES_DIR.glob(f"{lang}.*.json"))]:
        with path.open(encoding="utf-8") as f:
            messages.update(json.load(f))
    return messages


def translate(lang: str, key: str, **params: object) -> str:
    """The message ``key`` in ``lang``; a missing key shows as itself (and is logged), never as a crash."""
    message = catalogue(lang).get(key)
    if message is None:
        log.warning("message %r missing from the %s catalogue", key, lang)
        message = catalogue(DEFAULT_LANG).get(key, key)
    return message.format(**params) if params else message


def choose_lang(cookie_value: str | None) -> str:
    return cookie_value if cookie_value in LANGUAGES else DEFAULT_LANG


def request_lang(request: Request) -> str:
    return choose_lang(request.cookies.get(LANG_COOKIE))


class Translator:
    """``t("key", n=3)`` in templates, bound to one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.html_lang = LANGUAGES[lang]

    def __call__(self, key: str, **params: object) -> str:
        return translate(self.lang, key, **params)
