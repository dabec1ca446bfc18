"""The one helper every export uses for text people typed (evidence_server/export_text.py), on its own."""

from __future__ import annotations

import csv
import io

import pytest

from evidence_server.export_text import csv_cell, pdf_markup, visible


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=1"])
def test_csv_fields_that_look_like_formulas_are_read_back_as_text(text: str) -> None:
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(text), csv_cell("plain")])
    first, second = next(csv.reader(io.StringIO(out.getvalue())))
    assert first.startswith("'") and second == "plain"  # a spreadsheet shows the text, evaluates nothing


def test_control_and_format_characters_are_shown_not_acted_upon() -> None:
    assert visible("a\x1bb\x00c\x7f") == "a␛b␀c␡"
    assert visible("tab\tand\nline") == "tab\tand\nline"  # kept: they lay text out, they hide nothing
    assert visible("evil\u202etxt.exe") == "evil[U+202E]txt.exe"
    assert visible("x\u2028y\u0085z") == "x[U+2028]y[U+0085]z"
    assert visible(None) == "" and visible(42) == "42"
    assert pdf_markup("<b>&\x1b") == "&lt;b&gt;&amp;␛"
    assert csv_cell("\r=1") == "␍=1"  # a carriage return is shown, so nothing before the = hides it
