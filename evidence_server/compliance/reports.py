"""The evaluation report (R8) of a unit for a period, as XLSX and PDF: the compliance rate, the flags
by kind, state and officer, and the list of flags. The PDF uses reportlab's built-in CID font, like
the ledger exports (``ledger.exports``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Unit, User
from evidence_server.compliance.dashboard import Filters, Period, figures, find_flags
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.db import utcnow
from evidence_server.export_text import pdf_markup, xlsx_row
from evidence_server.ledger.exports import FONT, Heading

TITLE = "执法音像记录设备使用合规评估报告"
KIND_LABELS = {
    "late_transfer": "超时转存（超过24小时）",
    "not_transferred": "未按时转存",
    "device_overdue": "设备逾期未归还",
    "missing_recording": "应录未录",
    "short_recording": "记录时长明显短于执法时长",
    "segment_gap": "分段序号缺失",
    "timeline_gap": "录像时间轴中断",
    "vanished_file": "文件未转存即被删除",
    "suspected_edit": "疑似剪辑篡改",
    "fixity_failure": "存储文件校验失败",
    "integrity_incident": "完整性异常",
    "clock_off": "设备时间未校准",
    "used_outside_ledger": "未登记使用设备",
    "dock_by_non_holder": "非领用人转存设备",
    "unapproved_lending": "未经审批借用",
    "access_outside_cases": "越权下载或导出",
    "bulk_download": "批量下载",
}
STATE_LABELS = {"open": "待复核", "under_review": "复核中", "confirmed": "已确认", "dismissed": "已排除"}
FLAG_COLUMNS = ("编号", "类型", "发生时间", "设备", "执法人员", "状态", "复核意见")
FLAG_WIDTHS = (8, 24, 18, 14, 12, 10, 40)


@dataclass
class Report:
    heading: Heading
    summary: list[tuple[str, str]]
    by_kind: list[tuple[str, int, int, int]]  # label, counted, confirmed, dismissed
    by_officer: list[tuple[str, int]]
    flags: list[tuple[str, ...]]


def build(session: Session, user: User, unit: Unit, period: Period) -> Report:
    tz: ZoneInfo = period.tz
    fig = figures(session, user, period, unit.id)
    rate = next((r for r in fig.rates if r.unit_id == unit.id), None)
    in_period = [
        ComplianceFlag.unit_id == unit.id,
        ComplianceFlag.cleared_at.is_(None),
        ComplianceFlag.at >= period.start,
        ComplianceFlag.at < period.end,
    ]
    states: dict[tuple[str, str], int] = {
        (k, s): n
        for k, s, n in session.execute(
            select(ComplianceFlag.kind, ComplianceFlag.state, func.count())
            .where(*in_period)
            .group_by(ComplianceFlag.kind, ComplianceFlag.state)
        )
    }
    kinds = sorted({k for k, _ in states}, key=lambda k: list(KIND_LABELS).index(k) if k in KIND_LABELS else 99)
    by_kind = [
        (KIND_LABELS.get(k, k), fig.by_kind.get(k, 0), states.get((k, "confirmed"), 0), states.get((k, "dismissed"), 0))
        for k in kinds
    ]
    flags, _ = find_flags(
        session, user, Filters(unit_id=unit.id, since=period.since, until=period.until), tz, limit=5000
    )
    rows: list[tuple[str, ...]] = [
        (
            str(f.id),
            KIND_LABELS.get(f.kind, f.kind),
            f.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            f.device_serial or "",
            f.officer_no or "",
            STATE_LABELS.get(f.state, f.state),
            f.decision_reason or "",
        )
        for f in flags
    ]
    summary = [
        ("领用次数", str(rate.checkouts if rate else 0)),
        ("音像记录存在问题的领用", str(rate.flagged if rate else 0)),
        ("合规率", f"{rate.rate * 100:.1f}%" if rate and rate.rate is not None else "—"),
        ("违规情形（不含已排除）", str(fig.total)),
        ("其中已确认", str(sum(c for _, _, c, _ in by_kind))),
        ("待复核及复核中", str(fig.by_state.get("open", 0) + fig.by_state.get("under_review", 0))),
    ]
    heading = Heading(
        unit.name,
        period.since.isoformat(),
        period.until.isoformat(),
        utcnow().astimezone(tz).strftime("%Y-%m-%d %H:%M"),
    )
    return Report(heading, summary, by_kind, fig.by_officer, rows)


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "评估概况"
    bold, head = Font(bold=True), PatternFill("solid", fgColor="DDE5EE")
    xlsx_row(ws, [TITLE])
    ws["A1"].font = Font(size=16, bold=True)
    xlsx_row(ws, [report.heading.line])
    xlsx_row(ws, [])
    for label, value in report.summary:
        xlsx_row(ws, [label, value])
    xlsx_row(ws, [])
    xlsx_row(ws, ["违规类型", "数量", "已确认", "已排除"])
    for cell in ws[ws.max_row]:
        cell.font, cell.fill = bold, head
    for row in report.by_kind:
        xlsx_row(ws, list(row))
    xlsx_row(ws, [])
    xlsx_row(ws, ["执法人员（警号）", "违规数量"])
    for cell in ws[ws.max_row]:
        cell.font, cell.fill = bold, head
    for officer in report.by_officer:
        xlsx_row(ws, list(officer))
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 30, 14
    flags = wb.create_sheet("违规清单")
    xlsx_row(flags, list(FLAG_COLUMNS))
    for cell in flags[1]:
        cell.font, cell.fill = bold, head
    for flag_row in report.flags:
        xlsx_row(flags, list(flag_row))
        for cell in flags[flags.max_row]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(FLAG_WIDTHS, start=1):
        flags.column_dimensions[get_column_letter(i)].width = width
    flags.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_pdf(report: Report) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    cell = ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=10, wordWrap="CJK")
    h2 = ParagraphStyle("h2", fontName=FONT, fontSize=11, leading=15, spaceBefore=6)
    title = ParagraphStyle("title", fontName=FONT, fontSize=16, leading=20, alignment=1)
    sub = ParagraphStyle("sub", fontName=FONT, fontSize=9, leading=12, alignment=1)

    def para(text: Any, style: ParagraphStyle = cell) -> Paragraph:
        return Paragraph(pdf_markup(text), style)

    def table(rows: list[tuple[Any, ...]], header: tuple[str, ...], widths: tuple[float, ...]) -> Table:
        total = A4[0] - 24 * mm
        t = Table(
            [[para(c) for c in header]] + [[para(c) for c in r] for r in rows],
            colWidths=[total * w / sum(widths) for w in widths],
            repeatRows=1,
        )
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE5EE")),
                ]
            )
        )
        return t

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawRightString(A4[0] - 12 * mm, 7 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    story: list[Any] = [
        para(TITLE, title),
        Spacer(1, 2 * mm),
        para(report.heading.line, sub),
        Spacer(1, 4 * mm),
        table(report.summary, ("项目", "数值"), (3, 2)),
        para("违规情形按类型", h2),
        table(report.by_kind, ("违规类型", "数量", "已确认", "已排除"), (4, 1, 1, 1)),
    ]
    if report.by_officer:
        story += [para("违规情形按执法人员", h2), table(report.by_officer, ("执法人员（警号）", "数量"), (3, 1))]
    story += [para("违规清单", h2), table(report.flags, FLAG_COLUMNS, FLAG_WIDTHS)]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=TITLE,
        author="Custodia",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
