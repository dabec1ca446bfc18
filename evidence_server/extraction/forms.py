"""What the paper shows of a document: its JSON twin laid out as a form. Pure."""

from __future__ import annotations

from typing import Any

from custodia_wire.extraction import CATEGORY_LABELS, HANDOVER_FORMAT, RECIPIENT_KINDS
from evidence_server.extraction.pdf import Form

LIST_TITLE = "电子数据提取清单"
HANDOVER_TITLE = "电子数据移交回执"
HOW_TO_CHECK = (
    "核验方法 How to check: 每个文件的校验值可用公开工具复算 / recompute each check value with public tools: "
    "sha256sum 文件; openssl dgst -sm3 文件; b3sum 文件。"
    "本清单的 JSON 文件 (custodia.extraction-list/1) 由管理平台签名，并载明本 PDF 的 SHA-256 及对其的签名；"
    "custodia verify --list 清单.json --pdf 清单.pdf --key-fingerprint 指纹 一次核对全部。"
    " The JSON twin is signed by the evidence server and names this PDF's SHA-256 and a signature over it."
)


def _person(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    name, number = p.get("name") or "", p.get("number") or p.get("username") or ""
    return f"{name}（{number}）" if number else name


def _values(item: dict[str, Any]) -> str:
    return "\n".join(
        f"{label}: {str(item[key]).split(':', 1)[-1]}"
        for key, label in (("sha256", "SHA-256"), ("sm3", "SM3"), ("blake3", "BLAKE3"))
        if item.get(key)
    ) + ("" if item.get("sm3") else "\nSM3: 未计算 (not computed)")


def _file_cell(item: dict[str, Any]) -> str:
    lines = [str(item.get("name", "")), f"路径 path: {item.get('path', '')}"]
    mark = item.get("important")
    if isinstance(mark, dict):
        by = "记录仪 recorder" if mark.get("source") == "device" else "人工 person"
        lines.append(f"重要文件 important ({by}{' · ' + str(mark['how']) if mark.get('how') else ''})")
    src = item.get("source") or {}
    if src:
        lines.append(
            f"设备 {src.get('device_serial', '')} · 执法人员 {_person(src.get('officer'))} · "
            f"采集站 {src.get('station', '')} · 对接 {src.get('docked_at', '')}"
        )
    return "\n".join(lines)


def _common_fields(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("签名公钥指纹 Signing key", f"{doc['signer']['alg']} {doc['signer']['fingerprint']}"),
    ]


def list_form(doc: dict[str, Any]) -> Form:
    """The extraction list: its subject (a transfer or a package), every file with its check values."""
    fields: list[tuple[str, str]] = [("清单编号 List", doc["list_id"])]
    transfer, case = doc.get("transfer"), doc.get("case")
    if case:
        fields += [
            ("案件编号 Case number", case.get("number") or ""),
            ("案件名称 Case name", case.get("name") or ""),
            ("执法事项 Matter", case.get("enforcement_matter") or ""),
            ("办案单位 Unit", (case.get("unit") or {}).get("name") or ""),
        ]
    if transfer:
        device = transfer.get("device") or {}
        fields += [
            ("传输 Transfer", transfer.get("id") or ""),
            ("设备 Device", f"{device.get('serial', '')} {device.get('model') or ''}".strip()),
            ("执法人员 Officer", _person(transfer.get("officer"))),
            ("采集站 Station", (transfer.get("station") or {}).get("name") or ""),
            ("对接时间 Docked", transfer.get("docked_at") or ""),
            ("接收完成 Received", transfer.get("completed_at") or ""),
        ]
    fields += [
        ("提取人（操作人）Extractor", _person(doc.get("extractor"))),
        ("提取时间 Time", doc["issued_at"]),
        ("文件数 Files", str(len(doc["files"]))),
        *_common_fields(doc),
    ]
    rows = [
        (
            str(i),
            _file_cell(item),
            CATEGORY_LABELS.get(item["category"], item["category"]) + f"\n{item['category']}",
            item["format"],
            str(item["size"]),
            _values(item),
        )
        for i, item in enumerate(doc["files"], start=1)
    ]
    subject = "证据包 Package" if doc.get("subject") == "package" else "传输 Transfer"
    return Form(
        title=LIST_TITLE,
        subtitle=f"Electronic data extraction list · {subject}",
        fields=fields,
        headers=("序号", "文件 File", "类别 Category", "格式 Format", "大小（字节）Size", "完整性校验值 Check values"),
        rows=rows,
        widths=(4, 30, 8, 10, 10, 38),
        notes=(HOW_TO_CHECK,),
        signatures=(
            "提取人（签名）Extractor: ____________________    日期 Date: ______________",
            "见证人（签名）Witness: ____________________    日期 Date: ______________",
        ),
        footer=f"{doc['format']} {doc['list_id']} {doc['signer']['fingerprint']}",
    )


def handover_form(doc: dict[str, Any]) -> Form:
    """The handover receipt: the package, who received it and who handed it over."""
    assert doc["format"] == HANDOVER_FORMAT
    case, package, recipient = doc.get("case") or {}, doc.get("package") or {}, doc.get("recipient") or {}
    fields = [
        ("回执编号 Receipt", doc["receipt_id"]),
        ("案件编号 Case number", case.get("number") or ""),
        ("案件名称 Case name", case.get("name") or ""),
        ("证据包 Package", package.get("filename") or ""),
        ("证据包导出时间 Exported", package.get("exported_at") or ""),
        (
            "证据包摘要 Package digest",
            f"manifest.json {package.get('manifest_sha256') or ''}\n{package.get('manifest_blake3') or ''}",
        ),
        ("接收方类型 Recipient", f"{RECIPIENT_KINDS.get(recipient.get('kind', ''), '')} {recipient.get('kind', '')}"),
        ("接收单位 Organisation", recipient.get("organisation") or ""),
        ("接收人 Person", recipient.get("person") or ""),
        ("证件号码 ID", recipient.get("id_number") or ""),
        ("移交时间 Handed over", doc["handed_at"]),
        ("移交人 Handing officer", _person(doc.get("handed_by"))),
        ("备注 Note", doc.get("note") or ""),
        *_common_fields(doc),
    ]
    return Form(
        title=HANDOVER_TITLE,
        subtitle="Handover receipt of a court package",
        fields=fields,
        notes=(
            "核验 Check: sha256sum manifest.json（证据包内）应等于上列摘要 / must equal the digest above; "
            "custodia verify --handover 回执.json --pdf 回执.pdf --key-fingerprint 指纹。",
        ),
        signatures=(
            "移交人（签名）Handed over by: ____________________    日期 Date: ______________",
            "接收人（签名）Received by: ____________________    日期 Date: ______________",
        ),
        footer=f"{doc['format']} {doc['receipt_id']} {doc['signer']['fingerprint']}",
    )
