"""The ledger of a unit for a period, laid out like the paper 交接登记台账, as XLSX and PDF.

One row per checkout or lend with its return folded in; faults, losses, registrations and
corrections get a row of their own. Corrections are applied to the row they correct (and say so).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Unit, User
from evidence_server.export_text import pdf_markup, xlsx_row
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import HAND_OUT, REPORTS, Kind, effective

TITLE = "执法记录仪交接登记台账"
COLUMNS = ("编号", "日期", "设备", "领用人", "使用前检查", "领用时间", "归还时间", "归还状况", "管理员签字", "备注")
WIDTHS = (7, 11, 16, 16, 30, 16, 16, 14, 16, 40)  # XLSX column widths (characters)
KIND_LABELS = {
    Kind.register: "登记入册",
    Kind.checkout: "领用",
    Kind.lend: "借出",
    Kind.return_: "归还",
    Kind.fault: "故障报告",
    Kind.damage: "损坏报告",
    Kind.loss: "丢失报告",
    Kind.restored: "恢复使用",
    Kind.retire: "报废",
    Kind.correction: "更正",
}
CONDITIONS = {"good": "完好", "damaged": "损坏", "faulty": "故障"}
FAILURES = {
    "battery_low": "电量不足",
    "battery_unknown": "电量未检",
    "storage_low": "存储不足",
    "storage_unknown": "存储未检",
    "clock_off": "时钟偏差超限",
    "clock_unknown": "时钟未检",
    "fault_found": "发现故障",
}
FIELDS = {
    "occurred_at": "发生时间",
    "expected_return_at": "预计归还时间",
    "enforcement_matter": "执法事项",
    "case_number": "案件编号",
    "case_name": "案件名称",
    "condition": "状况",
    "description": "说明",
    "battery_percent": "电量",
    "storage_free_bytes": "剩余存储",
    "clock_offset_s": "时钟偏差",
}


@dataclass(frozen=True)
class PaperRow:
    entry_id: int
    date: str
    device: str
    officer: str
    checks: str
    time_out: str
    time_in: str
    condition: str
    signature: str
    notes: str
    late: bool
    sort_key: tuple[datetime, int]

    def cells(self) -> tuple[str, ...]:
        return (
            str(self.entry_id),
            self.date,
            self.device,
            self.officer,
            self.checks,
            self.time_out,
            self.time_in,
            self.condition,
            self.signature,
            self.notes,
        )


@dataclass(frozen=True)
class Names:
    """What the rows show for ids: users' display names, units' names, devices."""

    users: Mapping[int, str]
    units: Mapping[int, str]
    devices: Mapping[int, Device]


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _local(value: Any, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    moment = _when(value)
    return moment.astimezone(tz).strftime(fmt) if moment else ""


def _gib(n: int | None) -> str:
    return "—" if n is None else f"{n / 1024**3:.1f} GiB"


def checks_text(values: Mapping[str, Any], entry: LedgerEntry) -> str:
    battery = "—" if values["battery_percent"] is None else f"{values['battery_percent']}%"
    offset = values["clock_offset_s"]
    clock = "—" if offset is None else f"{offset:+.0f} 秒"
    text = (
        f"电量 {battery}；存储 {_gib(values['storage_free_bytes'])}；时钟 {clock}；"
        f"{'有故障' if entry.fault_found else '无故障'}"
    )
    if entry.readings_source == "station":
        text += "（采集站读取）"
    if entry.override:
        failed = "、".join(FAILURES.get(f, f) for f in entry.check_failures or [])
        text += f"；未通过：{failed}，管理员放行：{entry.override_reason}"
    return text


def _values(entry: LedgerEntry, corrections: Sequence[LedgerEntry]) -> dict[str, Any]:
    base = {k: getattr(entry, k) for k in FIELDS}
    return effective(base, [c.corrections or {} for c in corrections])


def _correction_note(entry: LedgerEntry, tz: ZoneInfo) -> str:
    changes = []
    for key, value in (entry.corrections or {}).items():
        shown = _local(value, tz) if key.endswith("_at") else CONDITIONS.get(value, value)
        changes.append(f"{FIELDS.get(key, key)} 改为 {shown if shown not in (None, '') else '（空）'}")
    return f"更正第 {entry.refers_to_id} 条：{'；'.join(changes)}。理由：{entry.description or ''}"


@dataclass(frozen=True)
class _Line:
    """One row's entry with what folds into it: its corrected values, its return and its corrections."""

    entry: LedgerEntry
    kind: Kind
    values: dict[str, Any]
    corrections: list[LedgerEntry]
    ret: LedgerEntry | None
    ret_values: dict[str, Any] | None

    @property
    def hand_out(self) -> bool:
        return self.kind in HAND_OUT


def _is_correction(e: LedgerEntry) -> bool:
    return e.kind == Kind.correction.value


def _referrers(entries: Sequence[LedgerEntry]) -> dict[int, list[LedgerEntry]]:
    """The entries that refer to each entry (its return, its corrections), in ledger order."""
    by_ref: dict[int, list[LedgerEntry]] = {}
    for e in sorted(entries, key=lambda e: (e.device_id, e.seq)):
        if e.refers_to_id is not None:
            by_ref.setdefault(e.refers_to_id, []).append(e)
    return by_ref


def _line(e: LedgerEntry, by_ref: Mapping[int, list[LedgerEntry]]) -> _Line:
    kind = Kind(e.kind)
    refs = by_ref.get(e.id, [])
    corrections = [c for c in refs if _is_correction(c)]
    ret = next((r for r in refs if r.kind == Kind.return_.value), None) if kind in HAND_OUT else None
    ret_values = _values(ret, [c for c in by_ref.get(ret.id, []) if _is_correction(c)]) if ret else None
    return _Line(e, kind, _values(e, corrections), corrections, ret, ret_values)


def _device_text(device: Device | None) -> str:
    if device is None:
        return ""
    return device.serial + (f"（{device.model}）" if device.model else "")


def _notes(line: _Line, tz: ZoneInfo) -> str:
    """The remarks column: what was handed out for, descriptions, corrections and late recording."""
    e, values, notes = line.entry, line.values, []
    if line.hand_out:
        if line.kind == Kind.lend:
            notes.append(f"经审批借出（申请 {e.lend_request_id}）")
        notes.append(f"执法事项：{values['enforcement_matter'] or ''}")
        if values["case_number"] or values["case_name"]:
            notes.append(f"案件：{values['case_name'] or ''}（{values['case_number'] or ''}）")
        notes.append(f"预计归还：{_local(values['expected_return_at'], tz)}")
    elif values["description"]:
        notes.append(values["description"])
    if line.kind == Kind.correction:
        notes = [_correction_note(e, tz)]
    if e.late:
        notes.append(f"补录（记录于 {_local(e.recorded_at, tz)}）")
    if line.ret is not None:
        if line.ret_values and line.ret_values["description"]:
            notes.append(f"归还说明：{line.ret_values['description']}")
        if line.ret.late:
            notes.append(f"归还补录（记录于 {_local(line.ret.recorded_at, tz)}）")
    notes += [f"已更正，见第 {c.id} 条" for c in line.corrections]
    return "；".join(notes)


def _signature(line: _Line, names: Names) -> str:
    """Who signed: the recorder (and the receiver of its return); for a bare return, its receiver."""
    e = line.entry
    if line.kind == Kind.return_:
        return f"归还接收：{names.users.get(e.received_by_id or 0, '')}"
    signature = f"{KIND_LABELS[line.kind]}：{names.users.get(e.recorded_by_id or 0, '')}"
    if line.ret is not None:
        signature += f"；归还接收：{names.users.get(line.ret.received_by_id or 0, '')}"
    return signature


def _officer(line: _Line, names: Names) -> str:
    """The holder: the officer, the borrowing unit for a lend, the reporter of a report with no holder."""
    e = line.entry
    officer = f"{e.officer_name or ''}（{e.officer_no}）" if e.officer_no else (e.officer_name or "")
    if line.kind == Kind.lend:
        return "借用：" + " ".join(filter(None, [names.units.get(e.borrower_unit_id or 0), officer]))
    if line.kind in REPORTS and not officer:
        return names.users.get(e.recorded_by_id or 0, "")  # no holder: the reporter
    return officer


def _condition(line: _Line) -> str:
    """The condition on return; for an entry that is no hand-out, what kind of entry it is."""
    if line.kind == Kind.return_ or line.ret is not None:
        cond = (line.ret_values if line.ret_values else line.values)["condition"]
        return CONDITIONS.get(cond, cond or "")
    return "" if line.hand_out else KIND_LABELS[line.kind]


def _time_in(line: _Line, occurred: datetime, tz: ZoneInfo) -> str:
    if line.ret_values is not None:
        return _local(line.ret_values["occurred_at"], tz)
    return _local(occurred, tz) if line.kind == Kind.return_ else ""


def _paper_row(line: _Line, names: Names, tz: ZoneInfo) -> PaperRow:
    e = line.entry
    occurred = _when(line.values["occurred_at"])
    assert occurred is not None
    return PaperRow(
        entry_id=e.id,
        date=_local(occurred, tz, "%Y-%m-%d"),
        device=_device_text(names.devices.get(e.device_id)),
        officer=_officer(line, names),
        checks=checks_text(line.values, e) if line.hand_out else "",
        time_out=_local(occurred, tz) if line.hand_out else "",
        time_in=_time_in(line, occurred, tz),
        condition=_condition(line),
        signature=_signature(line, names),
        notes=_notes(line, tz),
        late=e.late or bool(line.ret and line.ret.late),
        sort_key=(occurred, e.id),
    )


def paper_rows(entries: Sequence[LedgerEntry], names: Names, tz: ZoneInfo) -> list[PaperRow]:
    """The rows of the paper ledger for these entries (pure: everything it shows is passed in)."""
    by_ref = _referrers(entries)
    included = {e.id for e in entries}
    rows = [
        _paper_row(_line(e, by_ref), names, tz)
        for e in entries
        if not (Kind(e.kind) == Kind.return_ and e.refers_to_id in included)  # else folded into its checkout's row
    ]
    return sorted(rows, key=lambda r: r.sort_key)


# --- the database side ----------------------------------------------------------------------------


def export_entries(session: Session, unit_id: int, since: datetime, until: datetime) -> list[LedgerEntry]:
    """The unit's entries that happened in [since, until), with the returns and corrections of them."""
    period = list(
        session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.unit_id == unit_id, LedgerEntry.occurred_at >= since, LedgerEntry.occurred_at < until
            )
        )
    )
    ids = {e.id for e in period}
    extra: list[LedgerEntry] = []
    frontier = set(ids)
    while frontier:  # returns of checkouts, corrections of entries (and of those returns)
        more = [
            e
            for e in session.scalars(select(LedgerEntry).where(LedgerEntry.refers_to_id.in_(frontier)))
            if e.id not in ids and e.kind in (Kind.return_.value, Kind.correction.value)
        ]
        ids |= {e.id for e in more}
        frontier = {e.id for e in more}
        extra += more
    return period + extra


def names_for(session: Session, entries: Sequence[LedgerEntry]) -> Names:
    user_ids = {i for e in entries for i in (e.recorded_by_id, e.received_by_id, e.officer_id) if i}
    users = {u.id: u.display_name for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    units = {u.id: u.name for u in session.scalars(select(Unit))}
    devices = {d.id: d for d in session.scalars(select(Device).where(Device.id.in_({e.device_id for e in entries})))}
    return Names(users, units, devices)


# --- writers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    unit_name: str
    since: str
    until: str
    generated: str

    @property
    def line(self) -> str:
        return f"单位：{self.unit_name}    期间：{self.since} 至 {self.until}    导出时间：{self.generated}"


def to_xlsx(rows: Sequence[PaperRow], heading: Heading) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "交接登记台账"
    last = get_column_letter(len(COLUMNS))
    xlsx_row(ws, [TITLE])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(size=16, bold=True)
    ws["A1"].alignment = Alignment(horizontal="center")
    xlsx_row(ws, [heading.line])
    ws.merge_cells(f"A2:{last}2")
    xlsx_row(ws, COLUMNS)
    thin = Side(style="thin", color="000000")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for cell in ws[3]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDE5EE")
        cell.border = border
        cell.alignment = Alignment(horizontal="center", vertical="center")
    late_fill = PatternFill("solid", fgColor="FFF4E0")
    for row in rows:
        xlsx_row(ws, row.cells())
        for cell in ws[ws.max_row]:
            cell.border = border
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if row.late:
                cell.fill = late_fill
    for i, width in enumerate(WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A4"
    ws.print_title_rows = "3:3"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


FONT = "STSong-Light"  # reportlab's built-in CID font for Chinese: nothing to embed or install


def _pdf_table(rows: Sequence[PaperRow], cell: Any, head: Any) -> Any:
    """The ledger as a reportlab table: the header repeated on every page, late rows shaded."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Table, TableStyle

    data = [[Paragraph(pdf_markup(c), head) for c in COLUMNS]]
    data += [[Paragraph(pdf_markup(c), cell) for c in r.cells()] for r in rows]
    total = landscape(A4)[0] - 20 * mm
    widths = [total * w / sum(WIDTHS) for w in WIDTHS]
    table = Table(data, colWidths=widths, repeatRows=1)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE5EE")),
    ]
    style += [
        ("BACKGROUND", (0, i), (-1, i), colors.HexColor("#FFF4E0")) for i, r in enumerate(rows, start=1) if r.late
    ]
    table.setStyle(TableStyle(style))
    return table


def _pdf_footer(canvas: Any, doc: Any) -> None:
    """The page number, bottom right."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm

    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.drawRightString(landscape(A4)[0] - 10 * mm, 7 * mm, f"第 {doc.page} 页")
    canvas.restoreState()


def to_pdf(rows: Sequence[PaperRow], heading: Heading) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    cell = ParagraphStyle("cell", fontName=FONT, fontSize=7.5, leading=9.5, wordWrap="CJK")
    head = ParagraphStyle("head", parent=cell, fontSize=8.5, alignment=1)
    title = ParagraphStyle("title", fontName=FONT, fontSize=16, leading=20, alignment=1)
    sub = ParagraphStyle("sub", fontName=FONT, fontSize=9, leading=12, alignment=1)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=10 * mm,
        bottomMargin=12 * mm,
        title=TITLE,
        author="Custodia",
    )
    story = [
        Paragraph(pdf_markup(TITLE), title),
        Spacer(1, 2 * mm),
        Paragraph(pdf_markup(heading.line), sub),
        Spacer(1, 4 * mm),
        _pdf_table(rows, cell, head),
    ]
    doc.build(story, onFirstPage=_pdf_footer, onLaterPages=_pdf_footer)
    return out.getvalue()
