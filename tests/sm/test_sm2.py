"""SM2 as a signing option beside Ed25519 (issue 19.3): what the server signs with SM2 is verified apart from
the code that signed it, by OpenSSL's command line (``openssl pkeyutl -digest sm3 -pkeyopt
distid:1234567812345678``) and by a second, pure-Python SM2 (gmssl); a forger's own SM2 key and a changed
byte are refused; Ed25519 documents and notes stay exactly as they were; a server configured for SM2
signs receipts, checkpoints and packages that ``custodia verify`` and a station accept."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_cli.main import cli
from custodia_wire import auditlog, documents, keys, sm2
from custodia_wire import package as pkg
from evidence_server.audit.fullcheck import verify_log
from evidence_server.audit.log import issue_checkpoint
from tests.cases.conftest import World, make_world
from tests.custody.conftest import Dock
from tests.support import services
from tests.support.live import LiveServer

DIST = "distid:1234567812345678"
HOSTILE = "'; DROP TABLE receipts; -- \u202e<script>alert(1)</script> 张三\u0000\n— forged line"


@pytest.fixture(autouse=True)
def _openssl_with_sm2() -> None:
    services.require_tool("openssl")
    if not sm2.available():
        services.missing("this OpenSSL has no SM2 (3.0 or later is needed)")


def openssl_verifies(tmp: Path, public_pem: str, data: bytes, signature: bytes) -> bool:
    """``openssl pkeyutl -verify`` on files: the reviewer's own check, no Custodia code involved."""
    (tmp / "key.pem").write_text(public_pem)
    (tmp / "data").write_bytes(data)
    (tmp / "sig").write_bytes(signature)
    out = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin", "-in", "data"]
        + ["-sigfile", "sig", "-digest", "sm3", "-pkeyopt", DIST],
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    return out.returncode == 0 and "Signature Verified Successfully" in out.stdout


def gmssl_verifies(spki: bytes, data: bytes, signature: bytes) -> bool:
    """A second SM2 implementation (pure Python, its own SM3 and curve arithmetic, default ID built in)."""
    from gmssl import sm2 as gm  # noqa: PLC0415

    point = spki[-64:]  # the uncompressed point's x || y, after the 0x04
    return bool(gm.CryptSM2(None, point.hex(), asn1=True).verify_with_sm3(signature.hex(), data))


def test_openssl_made_keys_and_signatures_are_ones_custodia_reads(tmp_path: Path) -> None:
    """The other way round: a key and signature made by the openssl command verify here."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", "k.pem"], cwd=tmp_path, check=True)
    subprocess.run(["openssl", "pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"], cwd=tmp_path, check=True)
    (tmp_path / "msg").write_bytes(b"signed by openssl")
    subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-inkey", "k.pem", "-rawin", "-in", "msg", "-out", "sig"]
        + ["-digest", "sm3", "-pkeyopt", DIST],
        cwd=tmp_path,
        check=True,
    )
    public = keys.load((tmp_path / "pub.pem").read_text())
    assert public.alg == keys.SM2
    public.verify((tmp_path / "sig").read_bytes(), b"signed by openssl")
    with pytest.raises(keys.KeyProblem):
        public.verify((tmp_path / "sig").read_bytes(), b"signed by openssl!")
    # the private key file openssl wrote is one the server can sign with
    key = sm2.SM2PrivateKey.from_pem((tmp_path / "k.pem").read_bytes())
    assert key.public_spki() == public.spki


@pytest.mark.parametrize("size", [0, 1, 1000, 100_000])
def test_a_signed_document_is_verified_by_openssl_and_by_a_second_library(tmp_path: Path, size: int) -> None:
    signer = keys.SM2Signer(sm2.SM2PrivateKey.generate())
    doc = {"format": "custodia.receipt/1", "note": HOSTILE, "blob": "x" * size, "files": [{"path": HOSTILE}]}
    signed = documents.sign(doc, signer)
    assert signed["signature"]["alg"] == "SM2" and signed["signature"]["key_id"] == signer.public.key_id
    documents.verify_signature(signed, signer.public)  # our verifier
    body = documents.jcs({k: v for k, v in signed.items() if k != "signature"})
    sig = base64.b64decode(signed["signature"]["value"])
    assert openssl_verifies(tmp_path, signer.public.pem(), body, sig)  # openssl's command line
    assert gmssl_verifies(signer.public.spki, body, sig)  # a second implementation
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    assert not openssl_verifies(tmp_path, signer.public.pem(), bytes(flipped), sig)
    assert not gmssl_verifies(signer.public.spki, bytes(flipped), sig)


def test_a_forgers_own_sm2_key_and_a_tampered_document_are_refused() -> None:
    server, forger = keys.SM2Signer(sm2.SM2PrivateKey.generate()), keys.SM2Signer(sm2.SM2PrivateKey.generate())
    receipt = documents.sign({"format": documents.RECEIPT_FORMAT, "files": [{"path": "a.mp4"}]}, server)
    forged = documents.sign({**receipt, "files": [{"path": "other.mp4"}]}, forger)
    with pytest.raises(documents.DocumentError):
        documents.verify_signature(forged, server.public)  # signed, but not by the server
    forged["signature"]["key_id"] = server.public.key_id  # the forger claims the server's key id
    with pytest.raises(documents.DocumentError, match="does not verify"):
        documents.verify_signature(forged, server.public)
    tampered = {**receipt, "files": [{"path": "other.mp4"}]}
    with pytest.raises(documents.DocumentError, match="does not verify"):
        documents.verify_signature(tampered, server.public)
    ed = Ed25519PrivateKey.generate()
    with pytest.raises(documents.DocumentError, match="not signed with Ed25519"):  # no algorithm confusion
        documents.verify_signature(receipt, ed.public_key())
    # a station holding the server's SM2 key as printed on one line (base64 DER) verifies it
    assert documents.confirmed_files(receipt, documents.load_public_key_b64(server.public.raw_b64())) == {
        "a.mp4": {"path": "a.mp4"}
    }


def test_ed25519_documents_and_notes_are_exactly_as_before() -> None:
    key = Ed25519PrivateKey.generate()
    doc = {"format": "x", "value": HOSTILE}
    assert documents.sign(doc, key) == documents.sign(doc, keys.Ed25519Signer(key))  # Ed25519 is deterministic
    cp = auditlog.Checkpoint("custodia.example/log", 7, bytes(32), "2026-12-04T22:00:00.000000Z")
    note = cp.sign(key)
    assert note == cp.sign(keys.Ed25519Signer(key))
    raw = key.public_key().public_bytes_raw()
    kid = hashlib.sha256(b"custodia.example/log\n\x01" + raw).digest()[:4]  # C2SP's Ed25519 key ID
    assert base64.b64decode(note.rsplit(" ", 1)[1])[:4] == kid
    assert auditlog.verify_note(note, key.public_key()).tree_size == 7


def test_an_sm2_checkpoint_note_is_verified_by_openssl_and_refuses_a_forger(tmp_path: Path) -> None:
    signer = keys.SM2Signer(sm2.SM2PrivateKey.generate())
    cp = auditlog.Checkpoint("custodia.example/log", 42, os.urandom(32), "2026-12-04T22:00:00.000000Z")
    note = cp.sign(signer)
    assert auditlog.verify_note(note, signer.public) == cp
    body, _, sigline = note.partition("\n\n")
    blob = base64.b64decode(sigline.strip().rsplit(" ", 1)[1])
    assert openssl_verifies(tmp_path, signer.public.pem(), (body + "\n").encode(), blob[4:])
    assert gmssl_verifies(signer.public.spki, (body + "\n").encode(), blob[4:])
    forger = keys.SM2Signer(sm2.SM2PrivateKey.generate())
    with pytest.raises(auditlog.LogError, match="not signed by this key"):
        auditlog.verify_note(cp.sign(forger), signer.public)
    with pytest.raises(auditlog.LogError):
        auditlog.verify_note(note.replace("\n42\n", "\n43\n"), signer.public)


# --- a server configured for SM2 ------------------------------------------------------------------


@pytest.fixture
def sm2_world(tmp_path: Path, sqlite_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, sqlite_url, signing_alg="SM2")


def verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", *args])
    return result.exit_code, result.output


def test_a_server_configured_for_sm2_signs_packages_and_checkpoints_custodia_verify_and_openssl_accept(
    sm2_world: World, tmp_path: Path
) -> None:
    w = sm2_world
    assert (
        w.ctx.public_key.alg == "SM2" and (w.settings.data_dir / "keys" / "server-sm2.pem").stat().st_mode & 0o077 == 0
    )
    case = w.open_case()
    for data in (b"\x00sm2 footage " * 3000, os.urandom(50_000)):
        rid = w.recording(data, serial="DSJ-S001", name=f"{HOSTILE[:8]}.MP4")
        assert w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rid, "reason": HOSTILE})
    r = w.get("handler", f"/api/v1/cases/{case['id']}/package")
    assert r.status_code == 200, r.text
    zip_path = tmp_path / "case.zip"
    zip_path.write_bytes(r.content)
    code, out = verify(str(zip_path), "--key-fingerprint", w.ctx.public_key.fingerprint)
    assert code == 0, out
    assert "signature valid (SM2" in out and "log/checkpoint.txt" in out
    # the reviewer's own check of the manifest signature, as the README gives it
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(zip_path).extractall(folder)
    readme = (folder / pkg.README_NAME).read_text("utf-8")
    assert "-digest sm3 -pkeyopt distid:1234567812345678" in readme
    pem = (folder / pkg.KEY_NAME).read_text()
    manifest, sig = (folder / pkg.MANIFEST_NAME).read_bytes(), (folder / pkg.SIGNATURE_NAME).read_bytes()
    assert openssl_verifies(tmp_path, pem, manifest, sig)
    assert gmssl_verifies(keys.load(pem).spki, manifest, sig)
    # the log's checkpoints are SM2 notes, and the whole log verifies with the server's keys
    with w.session() as s:
        report = verify_log(s, w.ctx.note_keys)
    assert report.ok and report.checkpoints >= 1
    # a forger with an SM2 key of their own re-signs the manifest: refused against the server's fingerprint
    forger = sm2.SM2PrivateKey.generate()
    (folder / pkg.SIGNATURE_NAME).write_bytes(forger.sign(manifest))
    (folder / pkg.KEY_NAME).write_text(keys.from_sm2(forger).pem())
    code, out = verify(str(folder), "--key-fingerprint", w.ctx.public_key.fingerprint)
    assert code == 4, out


def test_a_log_signed_first_with_ed25519_then_with_sm2_verifies_with_both_keys(sm2_world: World) -> None:
    w = sm2_world
    ctx = w.ctx
    ctx.__dict__["signer"] = keys.Ed25519Signer(ctx.signing_key)  # as the server signed before the switch
    w.open_case()
    with w.session() as s:
        first, created = issue_checkpoint(ctx, s)
        assert created
    for cached in ("signer", "public_key", "key_id", "public_key_b64"):
        ctx.__dict__.pop(cached, None)
    w.open_case(number="杭西市监处罚〔2026〕202号")  # more entries
    with w.session() as s:
        second, created = issue_checkpoint(ctx, s)
        assert created
        assert auditlog.verify_note(first.note, ctx.signing_key.public_key())
        assert auditlog.verify_note(second.note, ctx.public_key)
        assert verify_log(s, ctx.note_keys).ok
        assert not verify_log(s, ctx.public_key).ok  # the SM2 key alone does not vouch for the Ed25519 note


def test_a_station_verifies_an_sm2_receipt_and_custodia_verify_does_too(tmp_path: Path, sqlite_url: str) -> None:
    server = LiveServer(data_dir=tmp_path / "server", database_url=sqlite_url, env={"CUSTODIA_SIGNING_ALG": "SM2"})
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.bootstrap()
    server.start()
    try:
        dock = Dock(server)
        assert isinstance(dock.key, keys.PublicKey) and dock.key.alg == "SM2"  # pinned at enrolment
        files = {"DCIM/DSJ0001_102345_20261121090000_0001.MP4": os.urandom(300_000)}
        out = dock.deliver(files, "DSJ0001")
        receipt: dict[str, Any] = out["receipt"]
        assert receipt["signature"]["alg"] == "SM2"
        confirmed = dock.confirmed(out)  # the station's own check
        assert set(confirmed) == set(files) and all(f["sm3"].startswith("sm3:") for f in confirmed.values())
        folder = tmp_path / "card"
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        (tmp_path / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False))
        key = dock.enrolment["server_public_key"]
        code, text = verify(str(folder), "--receipt", str(tmp_path / "receipt.json"), "--key", key)
        assert code == 0 and "signature valid" in text, text
        body = documents.jcs({k: v for k, v in receipt.items() if k != "signature"})
        pem = keys.load(key).pem()
        assert openssl_verifies(tmp_path, pem, body, base64.b64decode(receipt["signature"]["value"]))
        receipt["files"][0]["size"] += 1
        (tmp_path / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False))
        code, text = verify(str(folder), "--receipt", str(tmp_path / "receipt.json"), "--key", key)
        assert code != 0 and "BAD RECEIPT" in text
    finally:
        server.stop()
