"""Trusted time-stamps as configuration (issue 19.4): an authority that issues SM3-imprint tokens (a real
``openssl ts`` TSA with ``-sm3``) stamps checkpoints and packages of a server configured for SM2 and SM3;
``openssl ts -verify`` and ``custodia verify`` agree on them; any document's bytes (a list) can be stamped
through ``tsa.stamp_for``; and docs/cases.md's 国密核验 steps run as written with OpenSSL alone."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from custodia_cli.main import cli
from custodia_wire import package as pkg
from custodia_wire import sm2, timestamps
from evidence_server.audit import tsa
from evidence_server.config import Settings
from tests.audit.tsa_server import OpensslTSA
from tests.cases.conftest import World, make_world
from tests.support import services

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cases.md"


@pytest.fixture
def sm3_tsa(tmp_path: Path) -> Iterator[OpensslTSA]:
    """An openssl TSA that stamps SM3 imprints as well as SHA-256 ones."""
    services.require_tool("openssl")
    if not sm2.available():
        services.missing("this OpenSSL has no SM2/SM3 (3.0 or later is needed)")
    root = tmp_path / "tsa"
    root.mkdir()
    authority = OpensslTSA(root)
    config = root / "ts.cnf"
    config.write_text(config.read_text().replace("digests = sha256, sha384, sha512", "digests = sha256, sm3"))
    yield authority
    authority.close()


@pytest.fixture
def gm_package(tmp_path: Path, sqlite_url: str, sm3_tsa: OpensslTSA) -> Iterator[tuple[World, Path]]:
    """A package from a server signing with SM2 and stamping SM3 imprints at ``sm3_tsa``."""
    for w in make_world(
        tmp_path / "site",
        sqlite_url,
        signing_alg="SM2",
        tsa_hash="sm3",
        audit_tsa_url=sm3_tsa.url,
        package_tsa_url=sm3_tsa.url,
    ):
        case = w.open_case()
        for data in (b"\x00gm footage " * 4000, b"second file " * 10):
            rid = w.recording(data, serial="DSJ-G001")
            assert w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rid, "reason": "r"})
        r = w.get("handler", f"/api/v1/cases/{case['id']}/package")
        assert r.status_code == 200, r.text
        (tmp_path / "package.zip").write_bytes(r.content)
        yield w, tmp_path / "package.zip"


def ts_verify(cwd: Path, data: str, token: str, ca: Path) -> subprocess.CompletedProcess[str]:
    cmd = ["openssl", "ts", "-verify", "-data", data, "-in", token, "-token_in", "-CAfile", str(ca)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def test_sm3_time_stamps_on_an_sm2_package_are_checked_by_openssl_and_custodia_verify(
    gm_package: tuple[World, Path], sm3_tsa: OpensslTSA, tmp_path: Path
) -> None:
    w, zip_path = gm_package
    folder = tmp_path / "p"
    zipfile.ZipFile(zip_path).extractall(folder)
    ca = sm3_tsa.root / "ca.pem"
    for data, token in ((pkg.MANIFEST_NAME, pkg.MANIFEST_TST_NAME), (pkg.CHECKPOINT_NAME, pkg.CHECKPOINT_TST_NAME)):
        ok = ts_verify(folder, data, token, ca)
        assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
        stamp = timestamps.verify(
            (folder / token).read_bytes(), (folder / data).read_bytes(), timestamps.load_roots(ca)
        )
        assert stamp.hash == "sm3"  # the authority stamped SM3(bytes), as configured
    fp = w.ctx.public_key.fingerprint
    result = CliRunner().invoke(cli, ["verify", str(folder), "--key-fingerprint", fp, "--tsa-ca", str(ca)])
    assert result.exit_code == 0, result.output
    assert f"OK      {pkg.MANIFEST_TST_NAME}: {pkg.MANIFEST_NAME} existed at" in result.output
    # one byte more in the checkpoint: both refuse its stamp (and its signature)
    note = folder / pkg.CHECKPOINT_NAME
    note.write_bytes(note.read_bytes() + b"\n")
    assert ts_verify(folder, pkg.CHECKPOINT_NAME, pkg.CHECKPOINT_TST_NAME, ca).returncode != 0
    result = CliRunner().invoke(cli, ["verify", str(folder), "--key-fingerprint", fp, "--tsa-ca", str(ca)])
    assert result.exit_code != 0 and "the time-stamp is for other bytes" in result.output


def test_any_documents_bytes_are_stamped_by_the_configured_authority(sm3_tsa: OpensslTSA, tmp_path: Path) -> None:
    """What the extraction lists (and any other document) call: ``tsa.stamp_for(settings, bytes, what)``."""
    document = "电子数据提取清单 / extraction list: \u202e'; DROP TABLE x; --".encode()
    (tmp_path / "list.json").write_bytes(document)
    ca = sm3_tsa.root / "ca.pem"
    for hash_name in ("sha256", "sm3"):
        settings = Settings(data_dir=tmp_path / "s", environment="test", audit_tsa_url=sm3_tsa.url, tsa_hash=hash_name)
        stamped = tsa.stamp_for(settings, document, "extraction list")
        assert stamped is not None
        token, when = stamped
        (tmp_path / "list.tst").write_bytes(token)
        ok = ts_verify(tmp_path, "list.json", "list.tst", ca)
        assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
        stamp = timestamps.verify(token, document, timestamps.load_roots(ca))
        assert stamp.hash == hash_name and abs((stamp.time - when).total_seconds()) < 1
        with pytest.raises(timestamps.TimestampProblem, match="other bytes"):
            timestamps.verify(token, document + b" ", timestamps.load_roots(ca))
    # no authority configured: no stamp, no error
    assert tsa.stamp_for(Settings(data_dir=tmp_path / "s", environment="test"), document, "list") is None


def test_an_authority_that_does_not_stamp_sm3_leaves_the_document_without_a_stamp(tmp_path: Path) -> None:
    services.require_tool("openssl")
    root = tmp_path / "tsa"
    root.mkdir()
    authority = OpensslTSA(root)  # its digests: SHA-2 only
    try:
        settings = Settings(data_dir=tmp_path / "s", environment="test", audit_tsa_url=authority.url, tsa_hash="sm3")
        assert tsa.stamp_for(settings, b"a list", "list") is None
        assert tsa.stamp_for(settings.model_copy(update={"tsa_hash": "sha256"}), b"a list", "list") is not None
    finally:
        authority.close()


def test_the_gm_tool_steps_in_docs_cases_md_work_as_written(
    gm_package: tuple[World, Path], sm3_tsa: OpensslTSA, tmp_path: Path
) -> None:
    """Every command of the 国密核验 block, run as written on a real SM2/SM3 package, with OpenSSL alone."""
    for tool in ("openssl", "unzip", "sha256sum"):
        services.require_tool(tool)
    w, zip_path = gm_package
    block = re.search(r"<!-- gm-tools:begin -->\s*```sh\n(.*?)```\s*<!-- gm-tools:end -->", DOCS.read_text(), re.S)
    assert block, "docs/cases.md lost its gm-tools block"
    work = tmp_path / "court"
    work.mkdir()
    shutil.copy(zip_path, work / "package.zip")
    shutil.copy(sm3_tsa.root / "ca.pem", work / "tsa-ca.pem")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.group(1)], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SM3 OK" in done.stdout
    assert done.stdout.count("Signature Verified Successfully") == 2
    assert done.stdout.count("Verification: OK") == 2
    assert w.ctx.public_key.fingerprint[7:] in done.stdout
    listed = re.search(r'"sm3":"sm3:([0-9a-f]{64})"', done.stdout)
    assert listed and done.stdout.count(listed.group(1)) == 2  # step 2: the manifest's SM3 of SM3SUMS = openssl's
    # and step 1 catches one flipped byte in an original
    folder = work / "package"
    original = next(p for p in (folder / "recordings").iterdir())
    data = bytearray(original.read_bytes())
    data[3] ^= 0x01
    original.write_bytes(bytes(data))
    step1 = block.group(1).splitlines()[2]
    assert step1.startswith("openssl dgst -sm3")
    again = subprocess.run(["bash", "-c", step1], cwd=folder, capture_output=True, text=True)
    assert again.returncode != 0 and "SM3 OK" not in again.stdout


#: ecdsa-with-SHA256 and SM2-with-SM3 as DER object identifiers: the same length, so one replaces the other
ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")
SM2_SM3 = bytes.fromhex("06082a811ccf55018375")


def test_a_time_stamp_signed_with_sm2_is_reported_unchecked_never_trusted(sm3_tsa: OpensslTSA, tmp_path: Path) -> None:
    """An authority under GM/T 0033 signs its tokens with SM2, which this verifier cannot check. Such a token
    is still read for its time and its imprint, but with the authority's CA given it is refused with the
    command that checks it, never passed as checked. OpenSSL 3.0 cannot sign a time-stamp with SM2 (PKCS7:
    "signing not supported for this key type"), so the token here is the test authority's, with SM2-with-SM3
    written where its signature algorithm (ECDSA with SHA-256) was."""
    document = b"handover receipt \x00 \xe5\x8f\x97"
    settings = Settings(data_dir=tmp_path / "s", environment="test", audit_tsa_url=sm3_tsa.url, tsa_hash="sm3")
    stamped = tsa.stamp_for(settings, document, "receipt")
    assert stamped is not None
    token, when = stamped
    ca = timestamps.load_roots(sm3_tsa.root / "ca.pem")
    assert timestamps.verify(token, document, ca).hash == "sm3"  # as the authority made it: checked
    assert ECDSA_SHA256 in token
    sm2_token = token.replace(ECDSA_SHA256, SM2_SM3)
    stamp = timestamps.stamped(sm2_token, document)  # its time and imprint, no trust in who
    assert stamp.hash == "sm3" and abs((stamp.time - when).total_seconds()) < 1
    with pytest.raises(timestamps.TimestampProblem, match="signed with SM2.*openssl ts -verify"):
        timestamps.verify(sm2_token, document, ca)
    with pytest.raises(timestamps.TimestampProblem, match="other bytes"):
        timestamps.stamped(sm2_token, document + b"!")
