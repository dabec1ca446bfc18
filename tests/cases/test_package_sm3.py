"""SM3 in the court package: every file's SM3 in the signed manifest and in SM3SUMS equals what
``openssl dgst -sm3`` prints, so a reviewer holding only OpenSSL can check the package; a flipped byte
is caught by OpenSSL alone and by ``custodia verify``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from custodia_wire import package as pkg
from evidence_server.recordings.models import Recording
from tests.cases.conftest import World
from tests.cases.test_package import Exported, exported, unpack, verify  # noqa: F401  (the exported package fixture)
from tests.support import services
from tests.support.damage import flipped


@pytest.fixture(autouse=True)
def _openssl() -> None:
    services.require_tool("openssl")


def readme_sm3_command(folder_readme: str) -> str:
    """The SM3 check the package's README gives a reviewer, as printed there."""
    return next(line.strip() for line in folder_readme.splitlines() if line.strip().startswith("openssl dgst -sm3"))


def openssl_sm3(folder: object, path: str) -> str:
    out = subprocess.run(
        ["openssl", "dgst", "-sm3", "-r", path], cwd=folder, capture_output=True, text=True, check=True
    )
    return out.stdout.split()[0]


def test_every_sm3_in_the_package_is_what_openssl_prints(exported: Exported) -> None:
    folder = exported.folder
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_text("utf-8"))
    listed = [i for i in manifest["files"] if i["path"] != pkg.SM3SUMS_NAME]
    assert all(i.get("sm3") for i in manifest["files"]), "every file, originals included, has its SM3"
    with exported.world.session() as s:
        recs = {r.id: r for r in s.query(Recording).filter(Recording.id.in_(exported.recordings))}
    for item in manifest["files"]:
        assert item["sm3"] == "sm3:" + openssl_sm3(folder, item["path"]), item["path"]
        if item["role"] == "original":  # computed by the server on receipt, in the same pass as SHA-256
            assert recs[item["recording"]["id"]].sm3 == item["sm3"]
    sums = (folder / pkg.SM3SUMS_NAME).read_text("utf-8").splitlines()
    assert sorted(sums) == sorted(f"{i['sm3'][4:]}  {i['path']}" for i in listed if i["path"] not in pkg.SUMS_NAMES)
    # the README's command, run as a reviewer would, with a shell and OpenSSL only
    command = readme_sm3_command((folder / pkg.README_NAME).read_text("utf-8"))
    ok = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True)
    assert ok.returncode == 0 and "SM3 OK" in ok.stdout, ok.stdout + ok.stderr


def test_a_flipped_byte_is_caught_by_openssl_sm3_alone_and_by_custodia_verify(exported: Exported) -> None:
    folder = exported.folder
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_text("utf-8"))
    target = next(i for i in manifest["files"] if i["role"] == "original" and i["path"].endswith(".WAV"))
    with open(folder / target["path"], "r+b") as f:
        f.seek(777)
        byte = f.read(1)
        f.seek(777)
        f.write(bytes([byte[0] ^ 0x01]))
    assert "sm3:" + openssl_sm3(folder, target["path"]) != target["sm3"]
    command = readme_sm3_command((folder / pkg.README_NAME).read_text("utf-8"))
    bad = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True)
    assert bad.returncode != 0 and "SM3 OK" not in bad.stdout and target["path"] in bad.stdout
    code, output = verify(folder, "--key", exported.public_key)
    assert code == 5, output
    assert any(
        line.startswith("FAILED") and "SM3 sm3:" in line and target["path"] in line for line in output.splitlines()
    )


def test_an_sm3_forged_into_the_manifest_breaks_its_signature(exported: Exported) -> None:
    """SM3 is inside the signed manifest: changing it (to match altered bytes) is a forgery."""
    folder = exported.folder
    raw = (folder / pkg.MANIFEST_NAME).read_bytes()
    manifest = json.loads(raw)
    item = next(i for i in manifest["files"] if i["role"] == "original")
    (folder / pkg.MANIFEST_NAME).write_bytes(raw.replace(item["sm3"].encode(), b"sm3:" + b"0" * 64))
    code, output = verify(folder, "--key", exported.public_key)
    assert code == 4 and "NOT AUTHENTIC" in output, output


def test_a_recording_stored_before_sm3_is_read_once_at_export_so_sm3sums_is_complete(
    world: World, tmp_path: Path
) -> None:
    old_bytes = b"footage stored before SM3 " * 2000
    old = world.recording(old_bytes, serial="DSJ-O001", sm3=None)
    damaged = world.recording(b"another old one " * 100, serial="DSJ-O002", sm3=None)
    case = world.open_case()
    assert world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": old, "reason": "r"})
    r = world.get("handler", f"/api/v1/cases/{case['id']}/package")
    assert r.status_code == 200, r.text
    zip_path = tmp_path / "old.zip"
    zip_path.write_bytes(r.content)
    folder = unpack(zip_path, tmp_path / "old")
    manifest = json.loads((folder / pkg.MANIFEST_NAME).read_text("utf-8"))
    item = next(i for i in manifest["files"] if i["role"] == "original")
    assert item["sm3"] == "sm3:" + openssl_sm3(folder, item["path"])
    assert item["path"] in (folder / pkg.SM3SUMS_NAME).read_text("utf-8")
    logged = world.get("auditor", "/api/v1/audit/entries", params={"action": "recording.sm3"}).json()["items"]
    assert [e["object"]["id"] for e in logged] == [str(old)]  # read, checked and logged once, at the export
    # an old copy found damaged on that read is not exported
    with world.session() as s:
        path = world.ctx.store.path_of(s.get_one(Recording, damaged).storage_key)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(flipped(path.read_bytes()))
    other = world.open_case(number="杭西市监处罚〔2026〕303号")
    assert world.post("handler", f"/api/v1/cases/{other['id']}/links", {"recording_id": damaged, "reason": "r"})
    r = world.get("handler", f"/api/v1/cases/{other['id']}/package")
    assert r.status_code == 409 and "fixity" in r.text
