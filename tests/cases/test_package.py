"""The court package: exported by the server, streamed; checked with b3sum, sha256sum and
`custodia verify` offline; any changed byte is caught and the changed file or entry is named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from custodia_cli.main import cli
from custodia_wire import fingerprint
from custodia_wire import package as pkg
from evidence_server.accounts.models import User
from evidence_server.cases import export, zipstream
from evidence_server.cases.models import Case
from evidence_server.custody import blockmaps
from evidence_server.recordings.models import Recording
from tests.cases.conftest import GOOD, World


@dataclass
class Exported:
    world: World
    case_id: int
    recordings: list[int]
    zip_path: Path
    folder: Path
    public_key: str


def unpack(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


@pytest.fixture
def exported(world: World, tmp_path: Path, tiny_video: Path) -> Iterator[Exported]:
    case = world.open_case()
    now = datetime.now(UTC).replace(microsecond=0)
    world.post(
        "devadmin1",
        "/api/v1/devices",
        {
            "serial": "DSJ-P001",
            "model": "DSJ-V9",
            "family": "mass_storage",
            "occurred_at": (now - timedelta(days=1)).isoformat(),
        },
    )
    world.post(
        "devadmin1",
        "/api/v1/ledger/checkouts",
        {
            "serial": "DSJ-P001",
            "officer_id": world.users["officer1"],
            "enforcement_matter": "食品安全检查",
            "case_number": "杭西市监处罚〔2026〕101号",
            "readings": GOOD,
            "occurred_at": (now - timedelta(hours=3)).isoformat(),
            "expected_return_at": (now + timedelta(hours=3)).isoformat(),
        },
    )
    recs = [
        world.recording(tiny_video, serial="DSJ-P001"),
        world.recording(b"\x00\x01 audio of the inspection " * 1000, serial="DSJ-P002", name="录音 0002.WAV"),
    ]
    for rec in recs:
        r = world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场检查"})
        assert r.status_code == 201
        world.get("handler", f"/api/v1/recordings/{rec}")  # a custody event: viewed
    r = world.get("handler", f"/api/v1/cases/{case['id']}/package")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert int(r.headers["content-length"]) == len(r.content)
    assert "filename*=UTF-8''case-" in r.headers["content-disposition"]
    zip_path = tmp_path / "case.zip"
    zip_path.write_bytes(r.content)
    yield Exported(world, case["id"], recs, zip_path, unpack(zip_path, tmp_path / "unpacked"), world.ctx.public_key_b64)


def verify(target: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", str(target), *extra])
    return result.exit_code, result.output


def test_the_package_checks_out_with_b3sum_sha256sum_and_custodia_verify(exported: Exported) -> None:
    folder = exported.folder
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_text("utf-8"))
    originals = [f for f in manifest["files"] if f["role"] == "original"]
    assert len(originals) == 2 and manifest["case"]["number"] == "杭西市监处罚〔2026〕101号"
    assert {f["role"] for f in manifest["files"]} == {
        "readme",
        "checksums",
        "custody",
        "ledger",
        "original",
        "key",
        "checkpoint",
        "extraction-list",
        "extraction-list-pdf",
    }
    for tool, sums in (("b3sum", "B3SUMS"), ("sha256sum", "SHA256SUMS")):
        out = subprocess.run([tool, "-c", sums], cwd=folder, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.count(": OK") == len(manifest["files"]) - 3  # all but the three checksum files
    # the tools' own digests of the originals are the fingerprints taken at ingest
    with exported.world.session() as s:
        recs = {r.id: r for r in s.query(Recording).filter(Recording.id.in_(exported.recordings))}
    for item in originals:
        b3 = subprocess.run(["b3sum", item["path"]], cwd=folder, capture_output=True, text=True, check=True)
        sha = subprocess.run(["sha256sum", item["path"]], cwd=folder, capture_output=True, text=True, check=True)
        rec = recs[item["recording"]["id"]]
        assert f"blake3:{b3.stdout.split()[0]}" == item["blake3"] == rec.blake3
        assert f"sha256:{sha.stdout.split()[0]}" == item["sha256"] == rec.sha256
    custody = json.loads((folder / f"custody/recording-{exported.recordings[0]}.json").read_text("utf-8"))
    assert {"case.link", "recording.view"} <= {e["action"] for e in custody["entries"]}
    ledger = json.loads((folder / "ledger/device-DSJ-P001.json").read_text("utf-8"))
    assert [e["kind"] for e in ledger["entries"]] == ["register", "checkout"]
    readme = (folder / pkg.README_NAME).read_text("utf-8")
    assert "b3sum -c B3SUMS" in readme and "sha256sum -c SHA256SUMS" in readme and "custodia verify" in readme
    # the command as installed, on the ZIP, pinned to the server's key; and on the unpacked folder
    out = subprocess.run(
        [sys.executable, "-m", "custodia_cli.main", "verify", str(exported.zip_path), "--key", exported.public_key],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "VERIFIED" in out.stdout and "signature valid" in out.stdout
    code, output = verify(folder, "--key", exported.public_key)
    assert code == 0, output
    code, output = verify(folder)  # intact, but no key named: never "verified"
    assert code == 3 and "verified" not in output.lower(), output


def flip_byte_in_member(zip_path: Path, member: str, at: int) -> None:
    """Change one byte of a member's stored data inside the ZIP, leaving its headers alone."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(member)
    with open(zip_path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        pos = info.header_offset + 30 + name_len + extra_len + at
        f.seek(pos)
        byte = f.read(1)
        f.seek(pos)
        f.write(bytes([byte[0] ^ 0x01]))


def test_one_changed_byte_in_an_original_is_caught_and_named(exported: Exported) -> None:
    manifest = json.loads((exported.folder / pkg.MANIFEST_NAME).read_text("utf-8"))
    target = next(f["path"] for f in manifest["files"] if f["role"] == "original" and f["path"].endswith(".WAV"))
    flip_byte_in_member(exported.zip_path, target, 500)
    code, output = verify(exported.zip_path, "--key", exported.public_key)
    assert code == 5  # not the bytes recorded at ingest
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2 and all(target in line for line in failed)
    assert "MODIFIED" in failed[0] and "NOT THE ORIGINAL" in failed[1]
    assert f"problem(s): {target}" in output
    # b3sum and sha256sum catch it too, in the unpacked folder
    folder = exported.folder
    with open(folder / target, "r+b") as f:
        f.seek(500)
        f.write(b"#")
    for tool, sums in (("b3sum", "B3SUMS"), ("sha256sum", "SHA256SUMS")):
        out = subprocess.run([tool, "-c", sums], cwd=folder, capture_output=True, text=True)
        assert out.returncode != 0 and f"{target}: FAILED" in out.stdout


def edit_json(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    doc = json.loads(path.read_text("utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def test_a_changed_ledger_or_custody_entry_is_named(exported: Exported) -> None:
    folder = exported.folder
    ledger_file = folder / "ledger/device-DSJ-P001.json"
    entry_id = json.loads(ledger_file.read_text("utf-8"))["entries"][1]["id"]
    edit_json(ledger_file, lambda d: d["entries"][1].update(officer_no="999999"))
    custody_file = folder / f"custody/recording-{exported.recordings[1]}.json"
    seq = json.loads(custody_file.read_text("utf-8"))["entries"][-1]["seq"]
    edit_json(custody_file, lambda d: d["entries"].pop(-1))
    code, output = verify(folder, "--key", exported.public_key)
    assert code == 7  # a custody entry removed
    assert f"FAILED  ledger/device-DSJ-P001.json: entry id {entry_id}: differs from the exported entry" in output
    assert f"FAILED  custody/recording-{exported.recordings[1]}.json: entry seq {seq}: is missing (removed)" in output
    assert "recordings/" not in "".join(line for line in output.splitlines() if line.startswith("FAILED"))


@pytest.mark.parametrize("tamper", ["manifest", "extra_file", "missing_file"])
def test_a_forged_manifest_or_an_added_or_removed_file_is_caught(exported: Exported, tamper: str) -> None:
    folder = exported.folder
    if tamper == "manifest":
        edit_json(folder / pkg.MANIFEST_NAME, lambda d: d["case"].update(name="另一个案件"))
        expected = "FAILED  manifest.json: NOT AUTHENTIC: the signature does not verify"
    elif tamper == "extra_file":
        (folder / "recordings/inserted.MP4").write_bytes(b"footage added afterwards")
        expected = "FAILED  recordings/inserted.MP4: is not in the manifest (added after export)"
    else:
        victim = next((folder / "recordings").iterdir())
        victim.unlink()
        expected = f"FAILED  recordings/{victim.name}: missing from the package"
    code, output = verify(folder, "--key", exported.public_key)
    assert code == (4 if tamper == "manifest" else 1) and expected in output, output


def test_a_package_signed_by_another_key_is_refused_when_the_key_is_pinned(exported: Exported) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from custodia_wire import documents

    other = documents.public_key_b64(Ed25519PrivateKey.generate().public_key())
    code, output = verify(exported.zip_path, "--key", other)
    assert code == 4 and "which is not a key you trust" in output


def test_a_damaged_archive_is_reported_not_crashed_on(exported: Exported, tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    data = bytearray(exported.zip_path.read_bytes())
    broken.write_bytes(bytes(data[: len(data) // 2]))
    code, output = verify(broken)
    assert code == 1 and "FAILED" in output


def test_an_original_whose_stored_bytes_changed_stops_the_export(world: World) -> None:
    case = world.open_case()
    rec = world.recording(b"x" * 5000)
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "r"})
    with world.session() as s:
        path = world.ctx.store.path_of(s.get(Recording, rec).storage_key)  # type: ignore[attr-defined]
    blockmaps.make(world.ctx, rec)  # its block map, from the verified bytes
    os.chmod(path, 0o644)
    path.write_bytes(b"y" * 5000)
    with pytest.raises(export.ExportIntegrityError):  # the stream stops at the damaged block
        world.get("handler", f"/api/v1/cases/{case['id']}/package")
    with world.session() as s:
        assert s.get(Recording, rec).fixity_state == "failed"  # and the copy is marked damaged at once
    assert world.get("handler", f"/api/v1/cases/{case['id']}/package").status_code == 409


def test_a_recording_stored_before_block_maps_is_checked_whole_before_the_export(world: World) -> None:
    case = world.open_case()
    rec = world.recording(b"x" * 5000)  # no block map yet: the export makes it from verified bytes
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "r"})
    with world.session() as s:
        path = world.ctx.store.path_of(s.get(Recording, rec).storage_key)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    path.write_bytes(b"y" * 5000)
    r = world.get("handler", f"/api/v1/cases/{case['id']}/package")
    assert r.status_code == 409 and "damaged" in r.text
    with world.session() as s:
        assert s.get(Recording, rec).fixity_state == "failed"


def test_the_export_streams_with_bounded_memory(world: World, tmp_path: Path) -> None:
    size = 96 * 1024 * 1024
    big = tmp_path / "big.MP4"
    with open(big, "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(size // len(block)):
            f.write(block)
    case = world.open_case()
    rec = world.recording(big)
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "r"})
    with world.session() as s:
        built = export.build(s, world.ctx, s.get(User, world.users["handler"]), s.get(Case, case["id"]))
    total = 0
    tracemalloc.start()
    try:
        for chunk in built.stream():
            total += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == built.size > size
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB package"


def test_zip64_offsets_beyond_4_gib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member after 4 GiB of evidence is found and read back. The 4 GiB are zeros written sparse, and
    their CRC is not computed (it would take seconds and the test reads only the member after them)."""
    zero = bytes(8 * 1024 * 1024)

    class Crc:
        @staticmethod
        def crc32(data: bytes, value: int = 0) -> int:
            return value if data is zero else zlib.crc32(data, value)

    monkeypatch.setattr(zipstream, "zlib", Crc)
    big = 4 * 1024**3 + 3 * len(zero)
    entries = [
        zipstream.Entry("recordings/1-big.MP4", big, lambda: [zero] * (big // len(zero))),
        zipstream.Entry("recordings/2-small.MP4", 11, lambda: [b"after 4 GiB"]),
    ]
    out = tmp_path / "huge.zip"
    with open(out, "wb") as f:
        for chunk in zipstream.stream(entries, modified=datetime.now(UTC)):
            if chunk is zero:
                f.seek(len(zero), os.SEEK_CUR)
            else:
                f.write(chunk)
        f.truncate()
    assert out.stat().st_size == zipstream.archive_size((e.name, e.size) for e in entries)
    with zipfile.ZipFile(out) as zf:
        small = zf.getinfo("recordings/2-small.MP4")
        assert small.header_offset > 2**32 and zf.getinfo("recordings/1-big.MP4").file_size == big
        assert zf.read("recordings/2-small.MP4") == b"after 4 GiB"
    if shutil.which("unzip"):
        listing = subprocess.run(["unzip", "-l", str(out)], capture_output=True, text=True)
        assert listing.returncode == 0 and "recordings/2-small.MP4" in listing.stdout
    assert fingerprint.of_bytes(b"after 4 GiB").size == 11
