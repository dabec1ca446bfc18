"""电子数据提取清单 and 移交回执 (issue 19): signed PDF and JSON, hostile text shown as typed, check values
that sha256sum and openssl agree with, forgeries refused by `custodia verify`, every issue audited, and
another unit's people refused."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader
from sqlalchemy import select

from custodia_cli.main import cli
from custodia_wire import documents, extraction, keys
from evidence_server.audit.models import AuditEvent
from evidence_server.pdf_fonts import cjk_font_file
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer
from tests.cases.conftest import World

RTL = "右到左\u202etxt.exe"
HOSTILE = {
    "script": "<script>alert('x')</script>",
    "formula": "=cmd|' /C calc'!A0",
    "control": "屏幕\x1b[31m红字\x00尾",
    "rtl": RTL,
    "cjk": "某超市销售过期食品案",
}
LONG = "很长的名字" * 40  # 200 characters


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def embedded_fonts(data: bytes) -> list[str]:
    """The names of the fonts whose program is inside the PDF (FontFile2: TrueType)."""
    names = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            for desc in [font.get("/FontDescriptor")] + [
                d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts") or []
            ]:
                if desc is not None and "/FontFile2" in desc.get_object():
                    names.append(str(font["/BaseFont"]))
    return names


def fingerprint_of(world: World) -> str:
    return world.ctx.public_key.fingerprint


def verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", *args])
    return result.exit_code, result.output


def hostile_transfer(world: World, tmp_path: Path) -> tuple[str, Path, list[int]]:
    """A transfer of unit 1 whose every text field is hostile; its files also written to a folder."""
    officer = (HOSTILE["formula"][:32], HOSTILE["control"] + HOSTILE["script"])
    if not world.settings.database_url.startswith("sqlite"):  # PostgreSQL text holds no NUL: a bell instead
        officer = (officer[0], officer[1].replace("\x00", "\x07"))
    transfer_id = world.transfer("DSJ-L001", officer=officer)
    with world.session() as s:
        t = s.get(Transfer, transfer_id)
        t.device = {"serial": "DSJ-L001", "family": "mass_storage", "model": RTL + HOSTILE["script"]}
        s.get(Station, world.station_id).name = HOSTILE["cjk"] + HOSTILE["rtl"]
        s.commit()
    copy = tmp_path / "device"
    (copy / "DCIM").mkdir(parents=True)
    files = {
        f"=cmd|' C calc'!A0{LONG[:70]}.MP4": b"video " * 5000,
        "<script>alert(1)<script>\u202e录音.WAV": b"audio " * 3000,
        "现场照片.JPG": b"\xff\xd8\xff photo",
    }
    recs = []
    for name, data in files.items():
        recs.append(world.recording(data, serial="DSJ-L001", name=name, officer=officer, transfer_id=transfer_id))
        (copy / "DCIM" / name).write_bytes(data)
    return transfer_id, copy, recs


def get_list(world: World, who: str, transfer_id: str) -> tuple[dict[str, Any], bytes, bytes]:
    j = world.get(who, f"/api/v1/transfers/{transfer_id}/extraction-list.json")
    assert j.status_code == 200, j.text
    p = world.get(who, f"/api/v1/transfers/{transfer_id}/extraction-list.pdf")
    assert p.status_code == 200 and p.headers["content-type"] == "application/pdf"
    return j.json(), j.content, p.content


def test_a_transfers_list_shows_hostile_text_as_typed_with_its_font_embedded(world: World, tmp_path: Path) -> None:
    from evidence_server.accounts.models import User

    transfer_id, _, _ = hostile_transfer(world, tmp_path)
    with world.session() as s:  # the extractor's own name too
        s.get(User, world.users["devadmin1"]).display_name = "王@SUM(1)\u202e管理"
        s.commit()
    doc, _, pdf = get_list(world, "devadmin1", transfer_id)
    text = pdf_text(pdf)
    assert "电子数据提取清单" in text and "提取人" in text and "见证人" in text
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    assert "屏幕[U+001B][31m红字[U+0000]尾" in text  # control characters shown by their numbers, not acted on
    assert "[U+202E]" in text  # the right-to-left override shown by its number
    assert "<script>" in text and "=cmd|" in text and "某超市销售过期食品案" in text
    assert "DSJ-L001" in text and "视频" in text and "音频" in text and "照片" in text
    assert "王@SUM(1)[U+202E]管理" in text
    compact = text.replace("\n", "")
    for item in doc["files"]:  # each check value is on the paper, whole
        for key in ("sha256", "sm3", "blake3"):
            assert item[key].split(":")[1] in compact
    assert [f["category"] for f in sorted(doc["files"], key=lambda f: f["size"])] == ["photo", "audio", "video"]
    assert doc["transfer"]["officer"]["name"] == HOSTILE["control"] + HOSTILE["script"]  # the JSON keeps it exact
    if cjk_font_file() is None:
        pytest.skip("fonts-noto-cjk is not installed: the font cannot be embedded (scripts/setup.sh test)")
    assert any("CustodiaCJK-" in name for name in embedded_fonts(pdf)), embedded_fonts(pdf)


def test_the_lists_check_values_are_those_of_sha256sum_and_openssl_and_custodia_verify_agrees(
    world: World, tmp_path: Path
) -> None:
    transfer_id, copy, _ = hostile_transfer(world, tmp_path)
    doc, raw, pdf = get_list(world, "devadmin1", transfer_id)
    for item in doc["files"]:
        path = copy / item["path"]
        sha = subprocess.run(["sha256sum", str(path)], capture_output=True, check=True).stdout.split()[0].decode()
        assert item["sha256"] == f"sha256:{sha}" and item["size"] == path.stat().st_size
        out = subprocess.run(["openssl", "dgst", "-sm3", "-r", str(path)], capture_output=True, check=True)
        assert item["sm3"] == f"sm3:{out.stdout.split()[0].decode()}"  # SM3, as OpenSSL computes it
    (tmp_path / "list.json").write_bytes(raw)
    (tmp_path / "list.pdf").write_bytes(pdf)
    fp = fingerprint_of(world)
    code, out = verify(
        str(copy), "--list", str(tmp_path / "list.json"), "--pdf", str(tmp_path / "list.pdf"), "--key-fingerprint", fp
    )
    assert code == 0, out
    assert "VERIFIED" in out and out.count("as listed") == 3
    code, out = verify("--list", str(tmp_path / "list.json"), "--pdf", str(tmp_path / "list.pdf"))
    assert code == 3, out  # no key named: never called verified
    # the PDF's signature, with OpenSSL alone, as docs/cases.md shows
    (tmp_path / "key.pem").write_text(doc["signer"]["public_key_pem"])
    (tmp_path / "list.pdf.sig").write_bytes(base64.b64decode(doc["pdf"]["signature"]))
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", "key.pem", "-outform", "DER"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    assert "SHA256:" + __import__("hashlib").sha256(der).hexdigest() == fp
    ok = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "key.pem",
            "-rawin",
            "-in",
            "list.pdf",
            "-sigfile",
            "list.pdf.sig",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "Success" in ok.stdout, ok.stdout + ok.stderr
    # a changed file is named
    victim = copy / doc["files"][0]["path"]
    victim.write_bytes(victim.read_bytes() + b"x")
    code, out = verify(str(copy), "--list", str(tmp_path / "list.json"), "--key-fingerprint", fp)
    assert code == 1 and "MODIFIED" in out and doc["files"][0]["path"] in out


@pytest.mark.parametrize("forgery", ["size", "hash", "forger_key", "other_pdf"])
def test_a_forged_list_is_refused(world: World, tmp_path: Path, forgery: str) -> None:
    transfer_id, copy, _ = hostile_transfer(world, tmp_path)
    doc, _, pdf = get_list(world, "devadmin1", transfer_id)
    forged = json.loads(json.dumps(doc))
    if forgery == "size":
        forged["files"][0]["size"] += 1
    elif forgery == "hash":
        forged["files"][0]["sha256"] = "sha256:" + "0" * 64
    elif forgery == "forger_key":  # edited, then signed with the forger's own key, signer block and all
        forger = Ed25519PrivateKey.generate()
        forged["files"][0]["sha256"] = "sha256:" + "0" * 64
        forged["signer"] = extraction.signer_block(keys.from_ed25519(forger.public_key()))
        forged["pdf"]["signature"] = base64.b64encode(forger.sign(pdf)).decode()
        forged = documents.sign(forged, forger)
    else:
        pdf = pdf.replace(b"/Title", b"/Titl\x65", 1) + b"%forged\n"
    (tmp_path / "forged.json").write_text(json.dumps(forged, ensure_ascii=False))
    (tmp_path / "list.pdf").write_bytes(pdf)
    code, out = verify(
        str(copy),
        "--list",
        str(tmp_path / "forged.json"),
        "--pdf",
        str(tmp_path / "list.pdf"),
        "--key-fingerprint",
        fingerprint_of(world),
    )
    assert code in (1, 4), out
    assert "VERIFIED" not in out
    if forgery in ("size", "hash", "forger_key"):
        assert code == 4  # not authentic: the signature, or the signer


def test_issuing_and_downloading_a_list_is_audited_with_its_digests(world: World, tmp_path: Path) -> None:
    transfer_id, _, _ = hostile_transfer(world, tmp_path)
    doc, raw, pdf = get_list(world, "devadmin1", transfer_id)
    again, raw2, pdf2 = get_list(world, "devadmin1", transfer_id)
    assert (raw2, pdf2) == (raw, pdf)  # the list is kept: the same bytes each time
    with world.session() as s:
        events = [
            e
            for e in s.scalars(select(AuditEvent).where(AuditEvent.object_type == "issued_document"))
            if e.details["transfer_id"] == transfer_id
        ]
    issued = [e for e in events if e.action == "transfer-list.issued"]
    assert len(issued) == 1
    sha = "sha256:" + __import__("hashlib").sha256(raw).hexdigest()
    assert issued[0].details["json_sha256"] == sha and issued[0].details["pdf_sha256"] == doc["pdf"]["sha256"]
    assert issued[0].actor_name == "devadmin1"
    downloads = [e.details["form"] for e in events if e.action == "transfer-list.download"]
    assert sorted(downloads) == ["json", "json", "pdf", "pdf"]


def test_another_units_people_get_no_list_and_no_receipt(world: World, tmp_path: Path) -> None:
    transfer_id, _, recs = hostile_transfer(world, tmp_path)
    case = world.open_case()
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": recs[0], "reason": "现场"})
    for fmt in ("pdf", "json"):
        assert world.get("handler2", f"/api/v1/transfers/{transfer_id}/extraction-list.{fmt}").status_code == 404
        assert world.get("handler2", f"/api/v1/cases/{case['id']}/extraction-list.{fmt}").status_code == 404
        # an officer who did not record it sees no list of another officer's transfer
        assert world.get("officer2", f"/api/v1/transfers/{transfer_id}/extraction-list.{fmt}").status_code == 404
    body = {
        "recipient_kind": "court",
        "organisation": "法院",
        "person": "某",
        "id_number": "1",
        "package_digest": "0" * 64,
    }
    assert world.post("handler2", f"/api/v1/cases/{case['id']}/handovers", body).status_code == 404
    assert world.get("handler2", f"/api/v1/cases/{case['id']}/handovers").status_code == 404
    with world.session() as s:
        assert not list(s.scalars(select(AuditEvent).where(AuditEvent.action.like("%.issued"))))


def export_case(world: World, tmp_path: Path) -> tuple[dict[str, Any], Path, str]:
    _, _, recs = hostile_transfer(world, tmp_path)
    case = world.open_case(name=HOSTILE["script"] + LONG[:100], enforcement_matter=HOSTILE["formula"] + RTL)
    for rec in recs:
        r = world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场"})
        assert r.status_code == 201, r.text
    r = world.get("handler", f"/api/v1/cases/{case['id']}/package")
    assert r.status_code == 200, r.text
    zip_path = tmp_path / "case.zip"
    zip_path.write_bytes(r.content)
    return case, zip_path, r.headers["Custodia-Manifest-SHA256"]


def test_the_package_carries_its_list_and_the_package_verifier_checks_it(world: World, tmp_path: Path) -> None:
    case, zip_path, manifest_sha = export_case(world, tmp_path)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder)
    doc = json.loads((folder / extraction.PACKAGE_LIST_JSON).read_text("utf-8"))
    assert doc["subject"] == "package" and doc["case"]["number"] == case["number"]
    assert len(doc["files"]) == 3 and all(f["path"].startswith("recordings/") for f in doc["files"])
    text = pdf_text((folder / extraction.PACKAGE_LIST_PDF).read_bytes())
    assert case["number"] in text and "<script>" in text and "=cmd|" in text and "[U+202E]" in text
    fp = fingerprint_of(world)
    code, out = verify(str(zip_path), "--key-fingerprint", fp)
    assert code == 0, out
    assert "lists exactly the package's 3 originals" in out
    # the list alone against the unpacked package, and sha256sum of manifest.json is the package's digest
    code, out = verify(
        str(folder),
        "--list",
        str(folder / extraction.PACKAGE_LIST_JSON),
        "--pdf",
        str(folder / extraction.PACKAGE_LIST_PDF),
        "--key-fingerprint",
        fp,
    )
    assert code == 0, out
    sha = subprocess.run(["sha256sum", "manifest.json"], cwd=folder, capture_output=True, text=True, check=True)
    assert f"sha256:{sha.stdout.split()[0]}" == manifest_sha
    # the same list from the case's page
    r = world.get("handler", f"/api/v1/cases/{case['id']}/extraction-list.json")
    assert r.status_code == 200 and r.json()["list_id"] == doc["list_id"]


def test_a_handover_receipt_names_recipient_package_time_and_officer_and_verifies(
    world_any_db: World, tmp_path: Path
) -> None:
    world = world_any_db  # on PostgreSQL the export's audit entry is sequenced after its commit
    case, zip_path, manifest_sha = export_case(world, tmp_path)
    base = f"/api/v1/cases/{case['id']}/handovers"
    hostile = {
        "recipient_kind": "procuratorate",
        "organisation": HOSTILE["script"] + "杭州市西湖区人民检察院" + LONG[:150],
        "person": HOSTILE["control"].replace("\x00", "\x07") + RTL,
        "id_number": HOSTILE["formula"][:64],
        "note": "\x07" + LONG,
    }
    refused = world.post("handler", base, {**hostile, "package_digest": "sha256:" + "1" * 64})
    assert refused.status_code == 422, refused.text  # not a package exported here
    r = world.post("handler", base, {**hostile, "package_digest": manifest_sha})
    assert r.status_code == 201, r.text
    out = r.json()
    doc = out["document"]
    assert doc["recipient"]["person"] == hostile["person"] and doc["package"]["manifest_sha256"] == manifest_sha
    assert doc["handed_by"]["username"] == "handler"
    pdf = world.get("handler", out["pdf_url"]).content
    raw = world.get("handler", out["json_url"]).content
    text = pdf_text(pdf)
    assert "移交回执" in text and "移交人" in text and "接收人" in text
    assert "<script>" in text and "[U+001B][31m" in text and "[U+202E]" in text and "=cmd|" in text
    assert "\x1b" not in text and "\x07" not in text and manifest_sha.split(":")[1] in text.replace("\n", "")
    assert "[U+0007]" in text
    (tmp_path / "r.json").write_bytes(raw)
    (tmp_path / "r.pdf").write_bytes(pdf)
    fp = fingerprint_of(world)
    code, output = verify(
        "--handover", str(tmp_path / "r.json"), "--pdf", str(tmp_path / "r.pdf"), "--key-fingerprint", fp
    )
    assert code == 0, output
    forged = json.loads(raw)
    forged["recipient"]["person"] = "别人"
    (tmp_path / "f.json").write_text(json.dumps(forged, ensure_ascii=False))
    code, output = verify("--handover", str(tmp_path / "f.json"), "--key-fingerprint", fp)
    assert code == 4, output
    with world.session() as s:
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "handover-receipt.issued"))
    assert entry is not None and entry.details["document"] == doc["receipt_id"]
    assert entry.details["pdf_sha256"] == doc["pdf"]["sha256"]
    listed = world.get("handler", base).json()
    assert [x["id"] for x in listed] == [doc["receipt_id"]]
    assert shutil.which("openssl")


def test_the_case_page_links_the_list_and_records_a_handover(world: World, tmp_path: Path) -> None:
    import re

    from fastapi.testclient import TestClient

    from evidence_server.app import create_app
    from tests.cases.conftest import PASSWORD

    case, _, manifest_sha = export_case(world, tmp_path)
    with TestClient(create_app(world.settings, with_web=True)) as browser:
        r = browser.post("/api/v1/auth/login", json={"username": "handler", "password": PASSWORD})
        assert r.status_code == 200, r.text
        page = browser.get(f"/cases/{case['id']}")
        assert page.status_code == 200
        assert f"/api/v1/cases/{case['id']}/extraction-list.pdf" in page.text and 'id="handover-form"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {
            "csrf_token": token.group(1),
            "recipient_kind": "lawyer",
            "organisation": "某律师事务所",
            "person": "赵律师",
            "id_number": "13101200000000001",
            "package_digest": manifest_sha.split(":")[1],  # as sha256sum prints it
        }
        done = browser.post(f"/cases/{case['id']}/handovers", data=form, follow_redirects=False)
        assert done.status_code == 303, done.text[:500]
        page = browser.get(f"/cases/{case['id']}")
        assert "某律师事务所" in page.text and "/handovers/" in page.text
        wrong = browser.post(f"/cases/{case['id']}/handovers", data={**form, "package_digest": "2" * 64})
        assert wrong.status_code == 422 and "没有导出过" in wrong.text
        # a package link: its address shown once, on this answer; then listed without it, and revocable
        made = browser.post(
            f"/cases/{case['id']}/package-links",
            data={"csrf_token": token.group(1), "recipient": "赵律师", "days": "3"},
        )
        assert made.status_code == 200 and 'id="made-link"' in made.text, made.text[:300]
        url = re.search(r"<code>(http[^<]+)</code>", made.text)
        assert url
        path = "/" + url.group(1).split("/", 3)[3]
        assert world.client.get(path).status_code == 200  # anyone holding it
        page = browser.get(f"/cases/{case['id']}")
        assert path not in page.text and "赵律师" in page.text
        too_long = browser.post(
            f"/cases/{case['id']}/package-links",
            data={"csrf_token": token.group(1), "recipient": "赵律师", "days": "31"},
        )
        assert too_long.status_code == 422
        link_id = world.get("handler", f"/api/v1/cases/{case['id']}/package-links").json()[0]["id"]
        revoked = browser.post(
            f"/cases/{case['id']}/package-links/{link_id}/revoke",
            data={"csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert revoked.status_code == 303
        assert world.client.get(path).status_code == 404


def test_a_server_signing_with_sm2_issues_lists_that_custodia_verify_and_openssl_accept(
    tmp_path: Path, sqlite_url: str
) -> None:
    from custodia_wire import sm2
    from tests.cases.conftest import make_world

    if not sm2.available():
        pytest.skip("this OpenSSL has no SM2 (3.0 or later is needed)")
    for world in make_world(tmp_path, sqlite_url, signing_alg="SM2"):
        transfer_id, copy, _ = hostile_transfer(world, tmp_path)
        doc, raw, pdf = get_list(world, "devadmin1", transfer_id)
        assert doc["signer"]["alg"] == doc["signature"]["alg"] == "SM2"
        (tmp_path / "list.json").write_bytes(raw)
        (tmp_path / "list.pdf").write_bytes(pdf)
        code, out = verify(
            str(copy),
            "--list",
            str(tmp_path / "list.json"),
            "--pdf",
            str(tmp_path / "list.pdf"),
            "--key-fingerprint",
            world.ctx.public_key.fingerprint,
        )
        assert code == 0, out
        (tmp_path / "key.pem").write_text(doc["signer"]["public_key_pem"])
        (tmp_path / "list.pdf.sig").write_bytes(base64.b64decode(doc["pdf"]["signature"]))
        ok = subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "key.pem",
                "-rawin",
                "-in",
                "list.pdf",
                "-sigfile",
                "list.pdf.sig",
                "-digest",
                "sm3",
                "-pkeyopt",
                "distid:1234567812345678",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert ok.returncode == 0 and "Success" in ok.stdout, ok.stdout + ok.stderr


def test_the_reviewer_steps_in_docs_cases_md_work_as_written(world: World, tmp_path: Path) -> None:
    """The lists-tools block of docs/cases.md, run as written on a real package, its list and a receipt."""
    import re

    from tests.support import services

    for tool in ("b3sum", "sha256sum", "openssl", "base64"):
        services.require_tool(tool)
    case, zip_path, manifest_sha = export_case(world, tmp_path / "x")
    work = tmp_path / "court"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(work / "package")
    body = {"recipient_kind": "court", "organisation": "某法院", "person": "某法官", "id_number": "A1"}
    r = world.post("handler", f"/api/v1/cases/{case['id']}/handovers", {**body, "package_digest": manifest_sha})
    assert r.status_code == 201, r.text
    (work / "receipt.json").write_bytes(world.get("handler", r.json()["json_url"]).content)
    (work / "receipt.pdf").write_bytes(world.get("handler", r.json()["pdf_url"]).content)
    text = (Path(__file__).parents[2] / "docs" / "cases.md").read_text("utf-8")
    block = re.search(r"<!-- lists-tools:begin -->\s*```sh\n(.*?)```\s*<!-- lists-tools:end -->", text, re.S)
    assert block, "docs/cases.md lost its lists-tools block"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.group(1)], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("Signature Verified Successfully") == 2
    assert fingerprint_of(world)[7:] in out  # the fingerprint the reviewer compares with the paper form
    doc = json.loads((work / "package" / extraction.PACKAGE_LIST_JSON).read_text("utf-8"))
    pdf_sha = doc["pdf"]["sha256"].split(":")[1]
    assert out.count(pdf_sha) == 2  # the signed manifest's and the file's
    for item in doc["files"]:  # each value on the list is what the tools print
        for key in ("sha256", "sm3", "blake3"):
            assert item[key].split(":")[1] in out
    assert out.count(manifest_sha.split(":")[1]) == 2
    # a PDF changed after signing fails OpenSSL's check
    pdf = work / "package" / extraction.PACKAGE_LIST_PDF
    pdf.write_bytes(pdf.read_bytes() + b"%changed\n")
    again = subprocess.run(["bash", "-euo", "pipefail", "-c", block.group(1)], cwd=work, capture_output=True, text=True)
    assert again.returncode != 0


def test_each_document_gets_its_own_font_subset_and_old_subsets_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents with other characters each embed the glyphs they need (reportlab keeps one font per name:
    a shared name once printed blanks), and a long-running server does not keep every subset it made."""
    from evidence_server import pdf_fonts
    from evidence_server.extraction.pdf import Form, render

    if cjk_font_file() is None:
        pytest.skip("fonts-noto-cjk is not installed (scripts/setup.sh test)")
    monkeypatch.setattr(pdf_fonts, "KEEP", 2)
    for word in ("甲乙", "丙丁", "戊己", "庚辛", "甲乙"):
        pdf = render(Form(title="电子数据移交回执", subtitle=word, fields=[("接收人", word * 3)]))
        assert word * 3 in pdf_text(pdf) and "移交回执" in pdf_text(pdf)
    assert len(pdf_fonts._COVERED) <= 2


def test_a_package_link_expires_is_revocable_and_every_download_under_it_is_audited(
    world: World, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from evidence_server.extraction.models import PackageLink

    case, _, _ = export_case(world, tmp_path)
    base = f"/api/v1/cases/{case['id']}/package-links"
    soon = datetime.now(UTC) + timedelta(days=2)
    for bad in (datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) + timedelta(days=31)):
        assert world.post("handler", base, {"recipient": "律师", "expires_at": bad.isoformat()}).status_code == 422
    naive = {"recipient": "律师", "expires_at": soon.replace(tzinfo=None).isoformat()}
    assert world.post("handler", base, naive).status_code == 422
    other = {"recipient": "律师", "expires_at": soon.isoformat()}
    assert world.post("handler2", base, other).status_code == 404  # another unit's case handler
    made = world.post(
        "handler", base, {"recipient": HOSTILE["script"] + "某律师事务所", "expires_at": soon.isoformat()}
    )
    assert made.status_code == 201, made.text
    link = made.json()
    anonymous = world.client  # no credentials at all
    r = anonymous.get(link["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text[:300]
    (tmp_path / "shared.zip").write_bytes(r.content)
    code, out = verify(str(tmp_path / "shared.zip"), "--key-fingerprint", fingerprint_of(world))
    assert code == 0, out
    assert anonymous.get(link["url"]).status_code == 200
    listed = world.get("handler", base).json()
    assert [k["downloads"] for k in listed] == [2] and "token" not in listed[0]
    with world.session() as s:
        downloads = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "package_link.download")))
        exports = [
            e
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "case.export"))
            if (e.details or {}).get("package_link") == link["id"]
        ]
        assert not any(link["token"] in str(k.token_hash) for k in s.scalars(select(PackageLink)))
    assert [d.details["download"] for d in downloads] == [1, 2] and len(exports) == 2
    assert exports[0].actor_name == "handler"  # on the maker's authority
    # revoked: refused, as an unknown token is, and as an expired link is
    assert world.post("handler", f"{base}/{link['id']}/revoke").status_code == 200
    assert anonymous.get(link["url"]).status_code == 404
    assert anonymous.get("/api/v1/package-links/" + "x" * 43 + "/package").status_code == 404
    again = world.post("handler", base, other).json()
    with world.session() as s:
        s.get(PackageLink, again["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.commit()
    assert anonymous.get(again["url"]).status_code == 404


@pytest.mark.parametrize(
    ("offset", "zoned", "problem"),
    [
        (1, True, None),
        (30, True, None),
        (31, True, "at most 30 days"),
        (-1, True, "in the past"),
        (1, False, "time zone"),
    ],
)
def test_a_package_links_expiry_is_required_future_and_bounded(offset: int, zoned: bool, problem: str | None) -> None:
    from datetime import UTC, datetime, timedelta

    from evidence_server.extraction import rules

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    expires = now + timedelta(days=offset) - timedelta(seconds=1 if offset == 30 else 0)
    said = rules.link_expiry_problem(expires if zoned else expires.replace(tzinfo=None), now)
    assert (said is None) if problem is None else (said is not None and problem in said)
    assert rules.link_usable(now + timedelta(seconds=1), None, now)
    assert not rules.link_usable(now, None, now) and not rules.link_usable(now + timedelta(days=1), now, now)


def test_with_a_time_stamping_authority_a_list_and_a_receipt_carry_tokens_openssl_ts_verifies(
    tmp_path: Path, sqlite_url: str
) -> None:
    from tests.audit.tsa_server import OpensslTSA
    from tests.cases.conftest import make_world
    from tests.support import services

    services.require_tool("openssl")
    (tmp_path / "tsa").mkdir()
    authority = OpensslTSA(tmp_path / "tsa")
    try:
        for world in make_world(tmp_path / "site", sqlite_url, package_tsa_url=authority.url):
            case, _, manifest_sha = export_case(world, tmp_path / "x")
            with world.session() as s:
                transfer_id = s.scalar(select(Transfer.id).where(Transfer.device_serial == "DSJ-L001"))
            _, raw, _ = get_list(world, "devadmin1", transfer_id)
            token = world.get("devadmin1", f"/api/v1/transfers/{transfer_id}/extraction-list.tst")
            assert token.status_code == 200 and token.content
            (tmp_path / "list.json").write_bytes(raw)
            (tmp_path / "list.json.tst").write_bytes(token.content)
            ca = authority.root / "ca.pem"
            out = subprocess.run(
                [
                    "openssl",
                    "ts",
                    "-verify",
                    "-data",
                    "list.json",
                    "-in",
                    "list.json.tst",
                    "-token_in",
                    "-CAfile",
                    str(ca),
                ],
                cwd=tmp_path,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 0 and "Verification: OK" in out.stdout, out.stdout + out.stderr
            fp = fingerprint_of(world)
            code, said = verify(
                "--list",
                str(tmp_path / "list.json"),
                "--tst",
                str(tmp_path / "list.json.tst"),
                "--tsa-ca",
                str(ca),
                "--key-fingerprint",
                fp,
            )
            assert code == 0 and "the list existed at" in said, said
            # the token is for these bytes only: another list's bytes are refused
            (tmp_path / "other.json").write_bytes(raw.replace(b'"size":', b'"size": ', 1))
            code, said = verify(
                "--list",
                str(tmp_path / "other.json"),
                "--tst",
                str(tmp_path / "list.json.tst"),
                "--tsa-ca",
                str(ca),
                "--key-fingerprint",
                fp,
            )
            assert code != 0, said
            body = {"recipient_kind": "court", "organisation": "法院", "person": "法官", "id_number": "1"}
            made = world.post(
                "handler", f"/api/v1/cases/{case['id']}/handovers", {**body, "package_digest": manifest_sha}
            )
            assert made.status_code == 201 and made.json()["tst_url"], made.text
            assert world.get("handler", made.json()["tst_url"]).status_code == 200
    finally:
        authority.close()


def test_a_kept_list_edited_in_the_database_is_named_by_the_rows_check(world: World, tmp_path: Path) -> None:
    from evidence_server.binding.service import check_rows
    from evidence_server.extraction.models import IssuedDocument

    transfer_id, _, _ = hostile_transfer(world, tmp_path)
    get_list(world, "devadmin1", transfer_id)
    with world.session() as s:
        report = check_rows(s)
        assert report.rows["issued_documents"] == 1
        assert [f for f in report.findings if f.table == "issued_documents"] == []
        row = s.scalar(select(IssuedDocument))
        doc = json.loads(json.dumps(row.document))
        doc["files"][0]["sha256"] = "sha256:" + "0" * 64  # someone with the database rewrites what was issued
        row.document = doc
        row.pdf = row.pdf + b"%"
        s.commit()
        found = {f.field for f in check_rows(s).findings if f.table == "issued_documents"}
    assert found == {"json_sha256", "pdf_sha256"}


def test_a_file_the_recorder_marked_important_is_marked_on_the_list(world: World, tmp_path: Path) -> None:
    """重要文件标记 travels to the list: in the JSON (who marked it, and how) and on the paper."""
    from evidence_server.recordings.models import Recording

    transfer_id, _, recs = hostile_transfer(world, tmp_path)
    with world.session() as s:
        rec = s.get(Recording, recs[0])
        assert rec is not None
        rec.important, rec.important_source, rec.important_how = True, "device", "file_name"
        s.commit()
    doc, _, pdf = get_list(world, "devadmin1", transfer_id)
    marks = {item["recording_id"]: item.get("important") for item in doc["files"]}
    assert marks == {recs[0]: {"source": "device", "how": "file_name"}, recs[1]: None, recs[2]: None}
    compact = pdf_text(pdf).replace("\n", "").replace(" ", "")  # the PDF's text layer drops some spaces
    assert compact.count("重要文件important(记录仪recorder·file_name)") == 1, compact
