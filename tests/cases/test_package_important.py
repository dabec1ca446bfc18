"""The important mark (重要文件标记) travels in the signed package: a court sees which originals a recorder
or a person marked, and by what, in the manifest the server signed."""

from __future__ import annotations

import io
import json
import zipfile

from custodia_wire import package as pkg
from evidence_server.recordings.models import Recording
from tests.cases.test_package import Exported, exported, verify  # noqa: F401  (the exported package fixture)


def test_a_marked_original_carries_its_mark_in_the_signed_manifest(exported: Exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    marked, plain = exported.recordings
    with exported.world.session() as s:
        rec = s.get(Recording, marked)
        assert rec is not None
        rec.important, rec.important_source, rec.important_how = True, "device", "file_name"
        s.commit()
    r = exported.world.get("handler", f"/api/v1/cases/{exported.case_id}/package")
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        zf.extractall(tmp_path / "again")
        name = next(n for n in zf.namelist() if n.endswith(pkg.MANIFEST_NAME))
        manifest = json.loads(zf.read(name))
    rows = {i["recording"]["id"]: i["recording"] for i in manifest["files"] if i["role"] == "original"}
    assert (rows[marked]["important"], rows[marked]["important_source"], rows[marked]["important_how"]) == (
        True,
        "device",
        "file_name",
    )
    assert rows[plain]["important"] is False
    folder = (tmp_path / "again" / name).parent
    code, out = verify(folder, "--key", exported.public_key)
    assert code == 0, out  # the mark is inside what the server signed
