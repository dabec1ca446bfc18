"""Court packages with explicit trust (issue 14.4): two answers (intact; signed by a key you trust), custody
proven in the log's signed checkpoint, RFC 3161 stamps that `openssl ts -verify` agrees on, and every
forgery named with its own exit status."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_cli.main import cli
from custodia_wire import auditlog, documents, fingerprint, keys
from custodia_wire import package as pkg
from tests.audit.tsa_server import OpensslTSA
from tests.cases.conftest import World, make_world
from tests.cases.test_package import Exported, exported, unpack  # noqa: F401  (the fixture)
from tests.support import services

DOCS = Path(__file__).parents[2] / "docs" / "cases.md"


def verify(target: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", str(target), *extra])
    return result.exit_code, result.output


def forge(folder: Path, victim: str, new_bytes: bytes) -> str:
    """What a forger with a key of their own does: swap an original, rebuild the manifest and the sums,
    sign anew; the forger cannot sign the log's checkpoint, so it stays. Returns the forger's public key."""
    (folder / victim).write_bytes(new_bytes)
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_bytes())
    key = Ed25519PrivateKey.generate()
    mine = keys.from_ed25519(key.public_key())
    (folder / pkg.KEY_NAME).write_text(mine.pem())
    manifest["server"] |= {"public_key": mine.raw_b64(), "fingerprint": mine.fingerprint, "key_id": "forger"}
    items = [i for i in manifest["files"] if i["path"] not in pkg.SUMS_NAMES]
    for item in items:
        fp = fingerprint.of_file(folder / item["path"], sm3=True)
        item |= {"size": fp.size, "blake3": fp.blake3, "sha256": fp.sha256, "sm3": fp.sm3}
    for name, algo in pkg.SUMS:
        (folder / name).write_bytes(pkg.sums_file(items, algo))
    manifest["files"] = [*items, *(pkg.file_item(n, (folder / n).read_bytes(), "checksums") for n, _ in pkg.SUMS)]
    raw = documents.jcs(manifest)
    (folder / pkg.MANIFEST_NAME).write_bytes(raw)
    (folder / pkg.SIGNATURE_NAME).write_bytes(key.sign(raw))
    return mine.raw_b64()


def original(folder: Path, suffix: str = ".WAV") -> str:
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_bytes())
    return next(f["path"] for f in manifest["files"] if f["role"] == "original" and f["path"].endswith(suffix))


def test_the_manifest_is_the_rfc8785_bytes_it_is_signed_as(exported: Exported) -> None:
    import rfc8785

    raw = (exported.folder / pkg.MANIFEST_NAME).read_bytes()
    assert rfc8785.dumps(json.loads(raw)) == raw
    signer = keys.load((exported.folder / pkg.KEY_NAME).read_text())
    signer.verify((exported.folder / pkg.SIGNATURE_NAME).read_bytes(), raw)
    assert signer.raw_b64() == exported.public_key


def test_two_answers_and_the_fingerprint_from_the_paper_form(exported: Exported, tmp_path: Path) -> None:
    fp = keys.load(exported.public_key).fingerprint
    code, out = verify(exported.zip_path)
    assert code == 3 and "SIGNER UNKNOWN" in out and "verified" not in out.lower()
    assert "intact:  YES" in out and f"key {fp} is NOT CHECKED" in out
    printed = ":".join(fp[7:][i : i + 2].upper() for i in range(0, 64, 2))  # as a paper form may print it
    for how in (["--key-fingerprint", fp], ["--key-fingerprint", f"SHA256:{printed}"], ["--key", exported.public_key]):
        code, out = verify(exported.zip_path, *how)
        assert code == 0 and "VERIFIED" in out and "signer:  a key you trust" in out, out
    trusted = tmp_path / "trusted-keys"
    trusted.write_text(f"# the bureau's evidence server\n{keys.load(exported.public_key).pem()}")
    assert verify(exported.zip_path, "--trusted-keys", str(trusted))[0] == 0
    assert "custody entries are in the signed log" in out and "the bytes recorded at ingest" in out


def test_a_swapped_original_with_a_rebuilt_manifest_signed_by_a_new_key(exported: Exported) -> None:
    folder = exported.folder
    victim = original(folder)
    forger = forge(folder, victim, b"footage that was never on the recorder")
    assert subprocess.run(["b3sum", "-c", "B3SUMS"], cwd=folder, capture_output=True).returncode == 0  # fooled
    code, out = verify(folder)  # trusting nobody: never "verified"; the log's checkpoint is not the forger's
    assert code == 6 and "verified" not in out.lower() and "ALTERED or not signed by the package signer" in out
    code, out = verify(folder, "--key", forger)  # trusting the forger's key does not help either
    assert code == 6
    code, out = verify(folder, "--key", exported.public_key)  # the reader trusts the bureau's key
    assert code == 5, out
    assert f"FAILED  {victim}: NOT THE ORIGINAL" in out and "which is not a key you trust" in out


def test_a_removed_custody_entry(exported: Exported) -> None:
    folder = exported.folder
    custody = folder / f"custody/recording-{exported.recordings[0]}.json"
    doc = json.loads(custody.read_text("utf-8"))
    removed = next(e for e in doc["entries"] if e["action"] == "case.link")
    doc["entries"].remove(removed)
    custody.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", "utf-8")
    code, out = verify(folder, "--key", exported.public_key)
    assert code == 7, out
    assert f"FAILED  custody/recording-{exported.recordings[0]}.json: entry seq {removed['seq']}: is missing" in out


def test_an_altered_custody_entry_is_not_in_the_log(exported: Exported) -> None:
    folder = exported.folder
    custody = folder / f"custody/recording-{exported.recordings[0]}.json"
    doc = json.loads(custody.read_text("utf-8"))
    doc["entries"][-1]["actor"]["name"] = "someone else"
    custody.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", "utf-8")
    code, out = verify(folder, "--key", exported.public_key)
    assert code == 7 and "NOT IN THE LOG" in out


def test_an_altered_checkpoint(exported: Exported) -> None:
    folder = exported.folder
    note = (folder / pkg.CHECKPOINT_NAME).read_text("utf-8")
    lines = note.split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claim a bigger log
    (folder / pkg.CHECKPOINT_NAME).write_text("\n".join(lines), "utf-8")
    code, out = verify(folder, "--key", exported.public_key)
    assert code == 6 and f"FAILED  {pkg.CHECKPOINT_NAME}: ALTERED" in out


def test_an_older_package_replayed_against_a_newer_checkpoint(exported: Exported, tmp_path: Path) -> None:
    w = exported.world
    old_note = (exported.folder / pkg.CHECKPOINT_NAME).read_text("utf-8")
    old = auditlog.parse_note(old_note)[0]
    # after the export the recording was unlinked from the case: a custody event the old package lacks
    r = w.post(
        "handler", f"/api/v1/cases/{exported.case_id}/links/{exported.recordings[0]}/unlink", {"reason": "不属本案"}
    )
    assert r.status_code == 200, r.text
    r = w.post("auditor", "/api/v1/audit/checkpoints")
    assert r.status_code in (200, 201), r.text
    newer = tmp_path / "newer.txt"
    newer.write_text(w.get("auditor", "/api/v1/audit/checkpoints/latest/note").text, "utf-8")
    proof = tmp_path / "consistency.json"
    proof.write_text(w.get("auditor", "/api/v1/audit/proofs/consistency", params={"first": old.tree_size}).text)
    code, out = verify(exported.zip_path, "--key", exported.public_key, "--checkpoint", str(newer))
    assert code == 8 and "STALE" in out and "ask for a fresh export" in out
    code, out = verify(
        exported.zip_path, "--key", exported.public_key, "--checkpoint", str(newer), "--consistency", str(proof)
    )
    assert code == 8 and "extends the log of" in out  # genuine, consistent, but old
    code, out = verify(exported.zip_path, "--checkpoint", str(newer))
    assert code == 6 and "nothing can be said about replay" in out  # a checkpoint from a key nobody trusts
    fresh = w.get("handler", f"/api/v1/cases/{exported.case_id}/package")
    assert fresh.status_code == 200
    (tmp_path / "fresh.zip").write_bytes(fresh.content)
    code, out = verify(tmp_path / "fresh.zip", "--key", exported.public_key, "--checkpoint", str(newer))
    assert code == 0, out


def test_a_package_of_format_1_still_verifies(exported: Exported, tmp_path: Path) -> None:
    """Packages exported before explicit trust: the signature inside the manifest, the old canonical form."""
    w = exported.world
    folder = tmp_path / "v1"
    shutil.copytree(exported.folder, folder)
    for name in (pkg.SIGNATURE_NAME, pkg.KEY_NAME, pkg.CHECKPOINT_NAME, pkg.SM3SUMS_NAME):  # format 1 had no SM3
        (folder / name).unlink()
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_bytes())
    manifest["format"] = pkg.PACKAGE_FORMAT
    kept = [f for f in manifest["files"] if f["role"] not in ("key", "checkpoint", "checksums")]
    for name, algo in ((pkg.B3SUMS_NAME, "blake3"), (pkg.SHA256SUMS_NAME, "sha256")):
        (folder / name).write_bytes(pkg.sums_file(kept, algo))
    sums = [pkg.file_item(n, (folder / n).read_bytes(), "checksums") for n in (pkg.B3SUMS_NAME, pkg.SHA256SUMS_NAME)]
    manifest["files"] = [*sums, *kept]
    for key in ("checkpoint", "canonical_json"):
        manifest.pop(key)
    body = {k: v for k, v in manifest.items() if k != "signature"}
    sig = w.ctx.signing_key.sign(documents.canonical_json(body))  # as package/1 was signed: no canon named
    body["signature"] = {"alg": "Ed25519", "key_id": w.ctx.key_id, "value": base64.b64encode(sig).decode()}
    (folder / pkg.MANIFEST_NAME).write_bytes(pkg.json_bytes(body))
    code, out = verify(folder, "--key", exported.public_key)
    assert code == 0, out
    assert "carries no log checkpoint" in out
    assert verify(folder)[0] == 3


@pytest.fixture
def openssl_tsa(tmp_path: Path) -> Iterator[OpensslTSA]:
    services.require_tool("openssl")
    root = tmp_path / "tsa"
    root.mkdir()
    authority = OpensslTSA(root)
    yield authority
    authority.close()


@pytest.fixture
def stamped(tmp_path: Path, database_url: str, openssl_tsa: OpensslTSA) -> Iterator[tuple[World, Path]]:
    """A package exported by a server configured with a time-stamping authority, unpacked."""
    for w in make_world(tmp_path / "site", database_url, package_tsa_url=openssl_tsa.url):
        case = w.open_case()
        rec = w.recording(b"stamped footage " * 500, serial="DSJ-T001")
        assert w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "r"})
        r = w.get("handler", f"/api/v1/cases/{case['id']}/package")
        assert r.status_code == 200, r.text
        (tmp_path / "p.zip").write_bytes(r.content)
        yield w, unpack(tmp_path / "p.zip", tmp_path / "p")


def openssl_ts_verify(folder: Path, data: str, token: str, ca: Path) -> subprocess.CompletedProcess[str]:
    cmd = ["openssl", "ts", "-verify", "-data", data, "-in", token, "-token_in", "-CAfile", str(ca)]
    return subprocess.run(cmd, cwd=folder, capture_output=True, text=True)


def test_time_stamps_that_openssl_and_the_verifier_agree_on(
    stamped: tuple[World, Path], openssl_tsa: OpensslTSA, tmp_path: Path
) -> None:
    w, folder = stamped
    ca = openssl_tsa.root / "ca.pem"
    key = w.ctx.public_key_b64
    for data, token in ((pkg.MANIFEST_NAME, pkg.MANIFEST_TST_NAME), (pkg.CHECKPOINT_NAME, pkg.CHECKPOINT_TST_NAME)):
        ok = openssl_ts_verify(folder, data, token, ca)
        assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    code, out = verify(folder, "--key", key, "--tsa-ca", str(ca))
    assert code == 0, out
    assert f"OK      {pkg.MANIFEST_TST_NAME}: {pkg.MANIFEST_NAME} existed at" in out
    assert f"OK      {pkg.CHECKPOINT_TST_NAME}: {pkg.CHECKPOINT_NAME} existed at" in out
    # an authority nobody vouched for: both refuse the same token
    other = tmp_path / "other-ca"
    other.mkdir()
    from tests.audit.tsa_server import make_pki

    make_pki(other)
    assert openssl_ts_verify(folder, pkg.MANIFEST_NAME, pkg.MANIFEST_TST_NAME, other / "ca.pem").returncode != 0
    code, out = verify(folder, "--key", key, "--tsa-ca", str(other / "ca.pem"))
    assert code == 9 and "not signed by an authority you trust" in out
    # other bytes than the ones stamped: both refuse
    stamped_copy = tmp_path / "copy"
    shutil.copytree(folder, stamped_copy)
    note = stamped_copy / pkg.CHECKPOINT_NAME
    note.write_bytes(note.read_bytes() + b"\n")
    assert openssl_ts_verify(stamped_copy, pkg.CHECKPOINT_NAME, pkg.CHECKPOINT_TST_NAME, ca).returncode != 0
    code, out = verify(stamped_copy, "--key", key, "--tsa-ca", str(ca))
    assert code != 0 and f"FAILED  {pkg.CHECKPOINT_TST_NAME}: the time-stamp is for other bytes" in out


def documented_commands() -> str:
    text = DOCS.read_text("utf-8")
    block = re.search(r"<!-- public-tools:begin -->\s*```sh\n(.*?)```\s*<!-- public-tools:end -->", text, re.S)
    assert block, "docs/cases.md lost its public-tools block"
    return block.group(1)


def test_the_public_tool_steps_in_docs_cases_md_work_as_written(
    stamped: tuple[World, Path], openssl_tsa: OpensslTSA, tmp_path: Path
) -> None:
    """Every command of the step-by-step check in docs/cases.md, run as written on a real package."""
    for tool in ("b3sum", "sha256sum", "openssl", "unzip"):
        services.require_tool(tool)
    w, _ = stamped
    work = tmp_path / "court"
    work.mkdir()
    shutil.copy(tmp_path / "p.zip", work / "package.zip")
    shutil.copy(openssl_tsa.root / "ca.pem", work / "tsa-ca.pem")
    fp = keys.load(w.ctx.public_key_b64).fingerprint
    script = documented_commands()
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature Verified Successfully" in done.stdout
    assert done.stdout.count("Verification: OK") == 2
    assert fp[7:] in done.stdout  # the fingerprint the reader compares with the paper form
    assert "FAILED" not in done.stdout
    # and the same steps catch a forged original
    folder = work / "package"
    with open(folder / original(folder, ".MP4"), "r+b") as f:
        f.write(b"X")
    again = subprocess.run(["bash", "-c", "cd package && b3sum -c B3SUMS"], cwd=work, capture_output=True, text=True)
    assert again.returncode != 0 and "FAILED" in again.stdout


def test_each_documented_exit_status_is_the_verifier_s() -> None:
    from custodia_wire.package_check import Status

    text = DOCS.read_text("utf-8")
    for status in Status:
        assert re.search(rf"^\| {int(status)} \| `{status.name}`", text, re.M), status
