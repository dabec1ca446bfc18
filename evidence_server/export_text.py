"""Text from the records, made safe to put in a spreadsheet, a CSV file or a PDF.

What people type (a fault description, a case name, a review note) ends up in exports that other
programs open. Two things in it must not reach them as they are:

- control characters: an XLSX file may not contain most of them (openpyxl refused the ``\\x1b`` of
  one fault report, and since the ledger is append-only its export answered 500 for good), and in
  a PDF they are invisible. Each is shown as its Unicode control picture (``\\x1b`` → ``␛``), the
  bidirectional and invisible format characters as ``[U+202E]``; tab and line feed stay.
- formula prefixes: a cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return
  before one) is run as a formula by spreadsheet programs (CSV injection). In XLSX such a cell is
  written as text with Excel's quote prefix, so it shows as typed and is never evaluated; in CSV it
  gets a leading apostrophe, as OWASP advises.

Every export goes through here: ``xlsx_row`` for openpyxl, ``csv_cell`` for CSV, ``pdf_markup`` for
reportlab's Paragraph (which reads markup, so ``&``, ``<`` and ``>`` are escaped too).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_KEPT = {"\t", "\n"}


def _visible_char(c: str) -> str:
    code = ord(c)
    category = unicodedata.category(c)
    if category == "Cc" and c not in _KEPT:
        if code < 0x20:
            return chr(0x2400 + code)  # ␀ … ␟
        return "\u2421" if code == 0x7F else f"[U+{code:04X}]"  # ␡, or a C1 control by its number
    if category in ("Cf", "Zl", "Zp", "Cs"):
        return f"[U+{code:04X}]"
    return c


def visible(value: object) -> str:
    """``value`` as text with every control, format and separator character shown, not acted upon."""
    text = "" if value is None else str(value)
    if text.isprintable() and "\u2028" not in text:
        return text
    return "".join(_visible_char(c) for c in text)


def formula_like(text: str) -> bool:
    return text.startswith(FORMULA_PREFIXES)


def csv_cell(value: object) -> str:
    """A CSV field: visible, and with an apostrophe before a formula prefix."""
    text = visible(value)
    return "'" + text if formula_like(text) else text


def pdf_markup(value: object) -> str:
    """Text for reportlab's Paragraph: visible, markup characters escaped."""
    return visible(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xlsx_row(ws: Any, values: Iterable[object]) -> None:
    """Append a row to an openpyxl worksheet: text made visible; text that looks like a formula kept
    as text (with the quote prefix), never as a formula. Numbers stay numbers."""
    row = [v if isinstance(v, int | float) and not isinstance(v, bool) else visible(v) for v in values]
    ws.append(row)
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str) and formula_like(cell.value):
            cell.data_type = "s"
            cell.quotePrefix = True
