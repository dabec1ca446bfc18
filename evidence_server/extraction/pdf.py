"""The paper form of an extraction list or a handover receipt: fields, a table of files, lines to sign.

Pure layout: everything shown is passed in; fonts are embedded (``pdf_fonts``). The PDF is made with
reportlab's ``invariant`` flag (no creation time, no random id), so the same document gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evidence_server.pdf_fonts import Fonts, fonts_for


@dataclass(frozen=True)
class Form:
    title: str
    subtitle: str
    fields: Sequence[tuple[str, str]]
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    widths: Sequence[float] = ()
    notes: Sequence[str] = ()
    signatures: Sequence[str] = ()
    footer: str = ""
    texts: list[str] = field(default_factory=list)

    def all_texts(self) -> list[str]:
        out = [self.title, self.subtitle, *self.headers, *self.notes, *self.signatures, self.footer, "第页共日期：_"]
        out += [t for pair in self.fields for t in pair]
        out += [c for row in self.rows for c in row]
        return out


def _footer(fonts: Fonts, text: str) -> Any:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(fonts.main, 7)
        canvas.drawString(12 * mm, 7 * mm, text[:150])
        canvas.drawRightString(A4[0] - 12 * mm, 7 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    return draw


def render(form: Form, *, require_embedded: bool = False) -> bytes:
    """The form as PDF bytes (A4 portrait)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    fonts = fonts_for(form.all_texts(), require_embedded=require_embedded)
    m = fonts.markup
    cell = ParagraphStyle("cell", fontName=fonts.main, fontSize=7.5, leading=9.5, wordWrap="CJK")
    label = ParagraphStyle("label", parent=cell, fontSize=8)
    head = ParagraphStyle("head", parent=cell, fontSize=8, alignment=1)
    title = ParagraphStyle("title", fontName=fonts.main, fontSize=16, leading=20, alignment=1)
    sub = ParagraphStyle("sub", fontName=fonts.main, fontSize=9, leading=12, alignment=1)
    body = ParagraphStyle("body", fontName=fonts.main, fontSize=8, leading=11, wordWrap="CJK")
    sign = ParagraphStyle("sign", fontName=fonts.main, fontSize=10, leading=16)
    width = A4[0] - 24 * mm
    grid = [("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    story: list[Any] = [Paragraph(m(form.title), title), Paragraph(m(form.subtitle), sub), Spacer(1, 4 * mm)]
    if form.fields:
        info = Table(
            [[Paragraph(m(k), label), Paragraph(m(v), cell)] for k, v in form.fields],
            colWidths=[width * 0.22, width * 0.78],
        )
        info.setStyle(TableStyle([*grid, ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#EEF2F6"))]))
        story += [info, Spacer(1, 4 * mm)]
    if form.headers:
        data = [[Paragraph(m(h), head) for h in form.headers]]
        data += [[Paragraph(m(c), cell) for c in row] for row in form.rows]
        total = sum(form.widths) or len(form.headers)
        widths = [width * w / total for w in (form.widths or [1] * len(form.headers))]
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(TableStyle([*grid, ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE5EE"))]))
        story += [table, Spacer(1, 4 * mm)]
    story += [Paragraph(m(n), body) for n in form.notes]
    story.append(Spacer(1, 8 * mm))
    story += [Paragraph(m(s), sign) for s in form.signatures]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=form.title,
        author="Custodia",
        invariant=1,
    )
    draw = _footer(fonts, form.footer)
    doc.build(story, onFirstPage=draw, onLaterPages=draw)
    return out.getvalue()
