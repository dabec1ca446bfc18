"""An upload completes only on its own bytes, received and hashed: a missing staging file, a crash between
storing and recording, and parallel PATCHes at the final byte."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy.orm.attributes import set_committed_value

from custodia_wire import fingerprint
from evidence_server.storage import object_key
from evidence_server.uploads import router as uploads_router
from evidence_server.uploads import service as upload_service
from evidence_server.uploads.models import Upload
from tests.custody.conftest import Dock
from tests.support.live import LiveServer

PATH = "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4"


def _staged(server: LiveServer, location: str) -> os.PathLike[str]:
    return server.settings().staging_dir / (location.rsplit("/", 1)[1] + ".part")  # type: ignore[operator]


def test_a_missing_staging_file_restarts_the_upload_even_when_the_object_exists(live_server: LiveServer) -> None:
    data = os.urandom(200_000)
    first = Dock(live_server)
    first.deliver({PATH: data}, "DSJ0001")  # the object with these digests is in the store now
    st = Dock(live_server, name="station-2")
    st.open({PATH: data}, serial="DSJ0002")  # another recorder: not held, its bytes must come
    location = st.create_upload(PATH, data).headers["location"]
    assert st.patch(location, 0, data[:1000]).status_code == 204
    os.unlink(_staged(live_server, location))  # the staging disk lost it

    head = st.http.head(location)
    assert head.status_code == 410  # not "all bytes here": the station starts a new upload
    r = st.patch(location, len(data), b"")
    assert r.status_code == 410 and r.headers.get("Custodia-Verified") is None
    lost = [
        e["object"]["id"]
        for e in live_server.get("/api/v1/audit/entries", params={"action": "upload.lost"}).json()["items"]
    ]
    assert lost == [location.rsplit("/", 1)[1]]
    assert st.upload(PATH, data).headers["Custodia-Verified"] == "true"  # the new upload's own bytes
    assert set(st.confirmed(st.complete({PATH: data}))) == {PATH}


def test_a_crash_between_storing_and_recording_is_safe(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    st = Dock(live_server)
    st.open({PATH: data}, serial="DSJ0001")
    location = st.create_upload(PATH, data).headers["location"]

    def crash(*_a: object, **_k: object) -> None:
        raise RuntimeError("power cut between storing and recording")

    monkeypatch.setattr(upload_service, "record_verified", crash)
    with pytest.raises(httpx.HTTPError):
        r = st.patch(location, 0, data)
        r.raise_for_status()
    monkeypatch.undo()
    key = object_key(fingerprint.of_bytes(data).blake3_hex)
    stored = live_server.settings().storage_dir / key  # type: ignore[operator]
    assert stored.exists() and not os.path.exists(_staged(live_server, location))  # stored, not recorded
    assert live_server.get("/api/v1/recordings").json()["total"] == 0
    # the stored object is not trusted for this upload: the upload is lost and the station sends again
    assert st.http.head(location).status_code == 410
    stored.chmod(0o644)
    stored.write_bytes(b"\x00" * len(data))  # and meanwhile the stored copy rotted
    assert st.upload(PATH, data).headers["Custodia-Verified"] == "true"
    assert stored.read_bytes() == data  # the verified bytes replaced it: digests compared, not sizes
    assert set(st.confirmed(st.complete({PATH: data}))) == {PATH}
    assert live_server.get("/api/v1/recordings").json()["total"] == 1


def test_parallel_patches_at_the_final_byte_get_clean_answers_and_verify_once(live_server: LiveServer) -> None:
    data = os.urandom(2_000_000)
    st = Dock(live_server)
    st.open({PATH: data}, serial="DSJ0001")
    location = st.create_upload(PATH, data).headers["location"]
    head = len(data) - 100_000
    assert st.patch(location, 0, data[:head]).status_code == 204

    def last_bytes(_: int) -> int:
        with httpx.Client(base_url=live_server.url, headers=dict(st.http.headers), timeout=60) as http:
            return http.patch(
                location,
                content=data[head:],
                headers={"Upload-Offset": str(head), "Content-Type": "application/offset+octet-stream"},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(last_bytes, range(8)))
    assert set(statuses) <= {204, 409, 423} and 204 in statuses, statuses
    verified = live_server.get("/api/v1/audit/entries", params={"action": "recording.verified", "limit": 100}).json()[
        "items"
    ]
    assert [e["details"]["upload_id"] for e in verified] == [location.rsplit("/", 1)[1]]
    assert st.patch(location, len(data), b"").headers["Custodia-Verified"] == "true"
    assert not list((live_server.settings().staging_dir / "locks").glob("*.lock"))  # type: ignore[operator]


def test_a_patch_that_finds_its_upload_finished_meanwhile_leaves_no_lock_file(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of parallel PATCHes, made certain: this request read the upload as still receiving, and
    by the time it holds the lock the request ahead of it has verified the upload and removed the lock
    file, which this request's open then made again. It answers as for a finished upload and removes
    that file too: a lock file left behind stays for good."""
    data = os.urandom(100_000)
    st = Dock(live_server)
    st.open({PATH: data}, serial="DSJ0001")
    location = st.create_upload(PATH, data).headers["location"]
    assert st.patch(location, 0, data).headers["Custodia-Verified"] == "true"
    locks = live_server.settings().staging_dir / "locks"  # type: ignore[operator]
    assert not list(locks.glob("*.lock"))

    real = uploads_router._own_upload

    def read_before_it_was_finished(*args: object, **kwargs: object) -> Upload:
        upload = real(*args, **kwargs)  # type: ignore[arg-type]
        set_committed_value(upload, "state", "receiving")  # the row as it was a moment earlier
        return upload

    monkeypatch.setattr(uploads_router, "_own_upload", read_before_it_was_finished)
    r = st.patch(location, len(data), b"")
    assert r.status_code == 204 and r.headers["Custodia-Verified"] == "true"
    assert not list(locks.glob("*.lock"))
    monkeypatch.undo()
    assert live_server.get("/api/v1/recordings").json()["total"] == 1  # verified once
