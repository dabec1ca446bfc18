"""Case numbers (案件编号): how they are written, normalised and checked. Pure.

A bureau writes its case numbers in a house style such as ``杭西市监处罚〔2026〕101号``: an issuing
organ, ``市监`` (or ``市场监管`` / ``市场监督管理局``), a document kind, the year in hexagonal brackets
〔〕 and a serial number followed by 号. People type the brackets as ``[]``, ``()``, ``（）``, ``【】``
or ``［］`` and the digits half- or full-width, so a number is normalised before it is checked or
looked up: brackets around the year become 〔〕, digits become ASCII, spaces go.
The pattern is ``Settings.case_number_pattern``; each bureau can set its own.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: The default: optional organ prefix, 市监 / 市场监管 / 市场监督管理(局), kind, 〔year〕, serial, 号.
DEFAULT_CASE_NUMBER_PATTERN = (
    r"^[\u4e00-\u9fa5A-Za-z0-9]{0,20}?(?:市监|市场监管|市场监督管理局?)[\u4e00-\u9fa5]{0,10}"
    r"〔20\d{2}〕\d{1,6}号$"
)
MAX_LENGTH = 60

_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_YEAR_BRACKETS = re.compile(r"[\[(（【［〔]\s*(\d{4})\s*[\])）】］〕]")


class CaseNumberError(ValueError):
    """A case number is empty, too long or not in the bureau's format."""


def normalize(raw: str) -> str:
    """The one written form of a case number: no spaces, ASCII digits, the year in 〔〕."""
    text = re.sub(r"\s+", "", (raw or "").translate(_FULLWIDTH_DIGITS))
    return _YEAR_BRACKETS.sub(r"〔\1〕", text)


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check(raw: str, pattern: str = DEFAULT_CASE_NUMBER_PATTERN) -> str:
    """The normalised number, or CaseNumberError saying what a valid one looks like."""
    number = normalize(raw)
    if not number:
        raise CaseNumberError("the case number is empty")
    if len(number) > MAX_LENGTH:
        raise CaseNumberError(f"the case number is longer than {MAX_LENGTH} characters")
    if not _compiled(pattern).match(number):
        raise CaseNumberError(
            f"{number!r} is not a case number in this bureau's format (for example 杭西市监处罚〔2026〕101号)"
        )
    return number


def valid_pattern(pattern: str) -> str:
    """Refuse a configured pattern that does not compile (checked when the settings load)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"case_number_pattern is not a regular expression: {exc}") from exc
    return pattern
