"""SM3 beside SHA-256 and BLAKE3 (issue 19): the server computes it in the pass that verifies an upload, and
it equals what ``openssl dgst -sm3`` prints; recordings stored before get theirs from verified bytes only;
the row's SM3 is bound to the log (an edited one is named), older logs without SM3 still agree."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from custodia_wire import fingerprint
from evidence_server.background.registry import discover
from evidence_server.binding.service import check_rows
from evidence_server.fixity.service import judge
from evidence_server.recordings.models import Recording
from evidence_server.uploads.receiver import Receiver
from tests.cases.conftest import World, make_world
from tests.custody.conftest import Dock, Site, recording_id
from tests.support import services
from tests.support.damage import flipped

PATH = "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4"


def needs_openssl(fn: Any) -> Any:
    return pytest.mark.usefixtures("_openssl")(fn)


@pytest.fixture
def _openssl() -> None:
    services.require_tool("openssl")


def openssl_sm3(data: bytes, tmp: Path) -> str:
    path = tmp / "sample.bin"
    path.write_bytes(data)
    out = subprocess.run(["openssl", "dgst", "-sm3", "-r", str(path)], capture_output=True, text=True, check=True)
    return "sm3:" + out.stdout.split()[0]


@needs_openssl
def test_the_server_computes_sm3_on_receipt_as_openssl_does(site: Site, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)  # several read blocks and an odd tail, through the pool threads
    Dock(site.server).deliver({PATH: data}, "DSJ0001")
    rid = recording_id(site.server, data)
    want = openssl_sm3(data, tmp_path)
    shown = site.server.get(f"/api/v1/recordings/{rid}").json()
    assert shown["sm3"] == want
    verified = [e for e in site.audit("recording.verified") if e["object"]["id"] == str(rid)]
    assert verified and verified[0]["details"]["sm3"] == want  # bound to the log at receipt
    head = site.server.get(f"/api/v1/recordings/{rid}/content", headers={"Range": "bytes=0-9"})
    assert head.headers["Custodia-SM3"] == want


@pytest.fixture
def old_site(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, database_url)


@needs_openssl
def test_recordings_stored_before_sm3_get_it_from_verified_bytes_only(old_site: World, tmp_path: Path) -> None:
    w = old_site
    good_bytes = os.urandom(2_000_000)
    good, bad = w.recording(good_bytes, sm3=None), w.recording(os.urandom(70_000), sm3=None)
    with w.session() as s:
        path = w.ctx.store.path_of(s.get_one(Recording, bad).storage_key)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(flipped(path.read_bytes()))  # an unlucky disk: this copy is not the evidence
    assert check_rows_ok(w)  # the old log says nothing of SM3: rows without it agree

    report = discover()["fixity.backfill_sm3"].fn(w.ctx)
    assert report["sm3_added"] == [good] and report["failed"] == [bad]
    with w.session() as s:
        assert s.get_one(Recording, good).sm3 == openssl_sm3(good_bytes, tmp_path)
        assert s.get_one(Recording, bad).sm3 is None and s.get_one(Recording, bad).fixity_state == "failed"
    logged = w.get("auditor", "/api/v1/audit/entries", params={"action": "recording.sm3"}).json()["items"]
    assert [(e["object"]["id"], e["details"]["sm3"]) for e in logged] == [
        (str(good), openssl_sm3(good_bytes, tmp_path))
    ]
    again = discover()["fixity.backfill_sm3"].fn(w.ctx)  # idempotent
    assert again["checked"] == [] and again["sm3_added"] == []
    assert check_rows_ok(w)


def check_rows_ok(w: World) -> bool:
    with w.session() as s:
        report = check_rows(s)
    return not [f for f in report.findings if f.table == "recordings"]


def test_an_edited_sm3_in_the_row_is_named_by_the_rows_check(old_site: World) -> None:
    w = old_site
    rid = w.recording(b"evidence bytes " * 100)
    assert check_rows_ok(w)
    with w.ctx.engine.begin() as conn:
        conn.execute(text("UPDATE recordings SET sm3 = :v WHERE id = :i"), {"v": "sm3:" + "0" * 64, "i": rid})
    with w.session() as s:
        findings = [f for f in check_rows(s).findings if f.table == "recordings"]
    assert [(f.row_id, f.field) for f in findings] == [(rid, "sm3")]
    assert "sm3 is 'sm3:000" in findings[0].message()


def test_the_fixity_sweep_checks_the_logged_sm3_and_trusts_no_edited_row(old_site: World) -> None:
    w = old_site
    data = b"evidence bytes " * 1000
    rid = w.recording(data)
    with w.ctx.engine.begin() as conn:  # the row's SM3 forged: the sweep checks against the log, not the row
        conn.execute(text("UPDATE recordings SET sm3 = :v WHERE id = :i"), {"v": "sm3:" + "1" * 64, "i": rid})
    report = discover()["fixity.sweep"].fn(w.ctx)
    assert rid in report["checked"] and rid not in report["failed"] and rid in report["rows_differ"]
    # pure: the same BLAKE3 and SHA-256 but another SM3 is not the evidence
    fp = fingerprint.of_bytes(data, sm3=True)
    other = fingerprint.Fingerprint(fp.blake3, fp.sha256, fp.size, "sm3:" + "2" * 64)
    assert judge(fp, other) == "failed" and judge(fp, fp) == "ok"
    assert judge(fingerprint.Fingerprint(fp.blake3, fp.sha256, fp.size), fp) == "ok"  # none logged: not judged


def test_sm3_notation_is_parsed_like_the_others() -> None:
    assert fingerprint.parse("sm3:" + "a" * 64, "sm3") == ("sm3", "a" * 64)
    assert (
        fingerprint.sm3_of(b"abc") == "sm3:66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )  # GB/T 32905 A.1
    with pytest.raises(fingerprint.FingerprintError):
        fingerprint.parse("sm3:" + "a" * 63)


@pytest.mark.parametrize("on_receipt", [True, False])
def test_the_receiving_pass_computes_sm3_unless_left_to_the_backfill(tmp_path: Path, on_receipt: bool) -> None:
    """``sm3_on_receipt``: in the one read that verifies the upload, or (off) not at all until the backfill."""
    receiver = Receiver(tmp_path / "staging", sm3=on_receipt)
    receiver.create("u1")
    data = os.urandom(3 * 1024 * 1024 + 7)
    appender = receiver.open_for_append("u1", 0)
    for start in range(0, len(data), 1_000_000):
        appender.write(data[start : start + 1_000_000])
    appender.close()
    got, _ = receiver.finish("u1")
    assert got.sm3 == (fingerprint.sm3_of(data) if on_receipt else None)
    assert got.blake3 == fingerprint.of_bytes(data).blake3
