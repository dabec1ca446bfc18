"""A probe that cannot reach the stored object says nothing about the recording.

Found by tests/production/test_hosts_can_die.py: a worker cut off from S3 while it read a recording
back with ffprobe recorded the recording as damaged at the source ("does not decode to its declared
end", 0 packets), an integrity incident the footage did not deserve; and a header probe that failed
the same way would have marked the recording "not media" for good.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import ffmpeg
import pytest

from evidence_server.media import probe
from evidence_server.media.probe import StorageUnreachable, decoded_to_end, unreachable
from tests.support import services
from tests.support.live import free_port

NETWORK = [
    "[tcp @ 0x5582a2156080] Connection to tcp://10.235.133.14:5000 failed: No route to host",
    "[tcp @ 0x55d] Connection to tcp://127.0.0.1:9 failed: Connection refused",
    "[http @ 0x55d] HTTP error 503 Service Unavailable",
    "Server returned 5XX Server Error reply",
    "[tls @ 0x55d] Connection timed out",
]
FILE = [
    "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d] stream 0, offset 0x30: partial file",
    "/srv/a.mp4: Invalid data found when processing input",
    "[h264 @ 0x55d] error while decoding MB 3 4, bytestream -5",
    "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d] moov atom not found",
]


@pytest.mark.parametrize("line", NETWORK)
def test_network_failures_are_told_apart(line: str) -> None:
    assert unreachable(f"first line\n{line}\nlast line") == line


@pytest.mark.parametrize("line", FILE)
def test_damage_is_not_taken_for_a_network_failure(line: str) -> None:
    assert unreachable(line) is None


@pytest.mark.ffmpeg
def test_ffprobe_against_an_unreachable_store_raises(tmp_path: Path) -> None:
    services.require_tool("ffprobe")
    url = f"http://127.0.0.1:{free_port()}/evidence/blake3/ab/cd?X-Amz-Signature=secret"
    with pytest.raises(StorageUnreachable) as caught:
        decoded_to_end(url, 12.0)
    assert "secret" not in str(caught.value)  # a presigned URL's signature stays out of the logs
    with pytest.raises(ffmpeg.Error) as header:
        ffmpeg.probe(url)
    assert unreachable((header.value.stderr or b"").decode())


@pytest.mark.ffmpeg
def test_a_cut_short_local_file_is_still_damage(tmp_path: Path, tiny_video: Path) -> None:
    services.require_tool("ffprobe")
    data = tiny_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    found = decoded_to_end(str(cut), 1000.0)
    assert found["complete"] is False


@pytest.mark.ffmpeg
def test_a_store_that_goes_silent_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that takes the connection and then says nothing (a host gone mid-read) does not hold
    the probe, and the recording's row lock, for good."""
    services.require_tool("ffprobe")
    monkeypatch.setattr(probe, "RW_TIMEOUT_S", 1.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/evidence/blake3/ab/cd"
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnreachable):
            decoded_to_end(url, 12.0)
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        for c in held:
            c.close()
        silent.close()
