"""The cases' pure rules, without I/O: case numbers, which checkout a recording was made in, which
transfers still lack their task, an officer's day, when a proxy is needed, and the ZIP's arithmetic."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from evidence_server.cases import numbers, rules, zipstream
from evidence_server.media.derive import browser_playable, plan

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
TOL = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("杭西市监处罚〔2026〕101号", "杭西市监处罚〔2026〕101号"),
        ("杭西市监处罚[2026]101号", "杭西市监处罚〔2026〕101号"),
        ("杭西市监处罚（２０２６）１０１号", "杭西市监处罚〔2026〕101号"),
        (" 沪市场监管案处 (2025) 3210号 ", "沪市场监管案处〔2025〕3210号"),
        ("市监案〔2026〕18号", "市监案〔2026〕18号"),
        ("黔东南州市场监督管理局罚【2024】7号", "黔东南州市场监督管理局罚〔2024〕7号"),
    ],
)
def test_case_numbers_are_normalised_and_accepted(typed: str, stored: str) -> None:
    assert numbers.check(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "2026-101",
        "杭西公安处罚〔2026〕101号",
        "杭西市监处罚〔1999〕101号",
        "杭西市监处罚〔2026〕号",
        "杭西市监处罚〔2026〕1234567号",
        "杭西市监处罚〔2026〕101",
        "x" * 80,
    ],
)
def test_malformed_case_numbers_are_refused_with_an_example(typed: str) -> None:
    with pytest.raises(numbers.CaseNumberError):
        numbers.check(typed)


def test_a_bureau_can_set_its_own_format() -> None:
    assert numbers.check("AJ-2026-0042", r"^AJ-20\d{2}-\d{4}$") == "AJ-2026-0042"
    with pytest.raises(ValueError, match="regular expression"):
        numbers.valid_pattern("([")


# --- which checkout a recording was made in -------------------------------------------------------


def checkout(
    entry_id: int = 1,
    start: datetime = T0,
    hours: float | None = 3,
    serial: str = "DSJ-A001",
    officer: str | None = "102345",
    case: str | None = "市监案〔2026〕18号",
) -> rules.CheckoutWindow:
    end = None if hours is None else start + timedelta(hours=hours)
    return rules.CheckoutWindow(entry_id, serial, officer, start, end, case, "某案", "食品安全检查")


def recording(
    rid: int,
    device_start: datetime,
    offset: float | None = 0.0,
    serial: str = "DSJ-A001",
    officer: str | None = "102345",
) -> rules.RecordingSpan:
    return rules.RecordingSpan(rid, serial, officer, device_start, device_start + timedelta(minutes=10), offset)


def matched(checkouts: list[rules.CheckoutWindow], recs: list[rules.RecordingSpan]) -> dict[int, int]:
    return {m.recording_id: m.entry_id for m in rules.match_checkouts(checkouts, recs, tolerance=TOL)}


def test_recordings_during_a_checkout_are_matched_and_others_not() -> None:
    recs = [
        recording(1, T0 + timedelta(hours=1)),
        recording(2, T0 - timedelta(hours=1)),
        recording(3, T0 + timedelta(hours=3, minutes=4)),
        recording(4, T0 + timedelta(hours=3, minutes=6)),
    ]
    assert matched([checkout()], recs) == {1: 1, 3: 1}


def test_the_device_clock_offset_is_taken_out_before_matching() -> None:
    # the device runs 10 minutes fast: its clock says 3 h 8 min after checkout, it was really 2 h 58 min
    fast = recording(1, T0 + timedelta(hours=3, minutes=8), offset=600)
    # this one runs 12 minutes fast: its clock says 2 min after checkout, it was really 10 min before it
    early = recording(2, T0 + timedelta(minutes=2), offset=12 * 60)
    # and this one 8 minutes slow: its clock says 10 min before checkout, it was really 2 min before it
    slow = recording(3, T0 - timedelta(minutes=10), offset=-8 * 60)
    assert matched([checkout()], [fast, early, slow]) == {1: 1, 3: 1}
    (m,) = rules.match_checkouts([checkout()], [fast], tolerance=TOL)
    assert "-600.0 s" in m.reason and "checkout #1" in m.reason


@pytest.mark.parametrize(
    "rec",
    [
        recording(1, T0 + timedelta(hours=1), serial="DSJ-OTHER"),
        recording(1, T0 + timedelta(hours=1), officer="999999"),
    ],
)
def test_another_device_or_another_officer_is_no_match(rec: rules.RecordingSpan) -> None:
    assert matched([checkout()], [rec]) == {}


def test_unknown_officer_and_open_checkout_and_no_case() -> None:
    assert matched([checkout(hours=None)], [recording(1, T0 + timedelta(days=1), officer=None)]) == {1: 1}
    assert matched([checkout(case=None)], [recording(1, T0 + timedelta(hours=1))]) == {}
    assert matched([checkout()], [rules.RecordingSpan(1, "DSJ-A001", "102345", None)]) == {}


def test_the_nearest_of_overlapping_checkouts_wins() -> None:
    first = checkout(1, T0, hours=1)
    second = checkout(2, T0 + timedelta(hours=1, minutes=2), hours=1, case="市监案〔2026〕19号")
    recs = [recording(1, T0 + timedelta(minutes=59)), recording(2, T0 + timedelta(hours=1, minutes=3))]
    assert matched([first, second], recs) == {1: 1, 2: 2}


# --- transfers still missing their task ------------------------------------------------------------


def test_transfers_missing_a_matter_or_a_case_after_the_grace_period() -> None:
    now = T0 + timedelta(days=2)
    tasks = [
        rules.TransferTask("complete", T0, "检查", 1),
        rules.TransferTask("no-case", T0, "检查", None),
        rules.TransferTask("nothing", T0 - timedelta(hours=1), None, None),
        rules.TransferTask("blank", T0, "  ", 3),
        rules.TransferTask("recent", now - timedelta(hours=1), None, None),
    ]
    found = rules.incomplete_transfers(tasks, now=now, grace=timedelta(hours=24))
    assert [(t.transfer_id, missing) for t, missing in found] == [
        ("nothing", ["enforcement_matter", "case"]),
        ("no-case", ["case"]),
        ("blank", ["enforcement_matter"]),
    ]


# --- the officer's day -----------------------------------------------------------------------------


def test_the_officers_day_in_order_with_the_gaps_between_recordings() -> None:
    recs = [
        recording(1, T0 + timedelta(minutes=30), offset=60),
        recording(2, T0 + timedelta(minutes=45)),
        recording(3, T0 + timedelta(minutes=50)),
    ]  # 2 and 3 overlap: no gap between them
    docks = [rules.Dock("tr-1", "DSJ-A001", T0 + timedelta(hours=4))]
    uploads = [
        rules.Upload(1, "tr-1", T0 + timedelta(hours=4, minutes=5)),
        rules.Upload(2, "tr-1", T0 + timedelta(hours=4, minutes=9)),
    ]
    items = rules.officer_day([checkout()], recs, docks, uploads, min_gap=timedelta(minutes=1))
    assert [i.kind for i in items] == [
        "checkout",
        "recording",
        "gap",
        "recording",
        "recording",
        "return",
        "dock",
        "upload",
    ]
    assert items[1].start == T0 + timedelta(minutes=29)  # corrected by the offset
    assert items[2].seconds == 6 * 60  # 09:39 → 09:45
    assert items[-1].seconds == 4 * 60 and items[-1].detail == {"files": 2}


# --- proxies -------------------------------------------------------------------------------------------


def probe(video: str | None, audio: str | None = "aac", pix_fmt: str = "yuv420p") -> dict:
    streams = []
    if video:
        streams.append({"codec_type": "video", "codec_name": video, "pix_fmt": pix_fmt})
    if audio:
        streams.append({"codec_type": "audio", "codec_name": audio})
    return {"streams": streams, "format": {}}


@pytest.mark.parametrize(
    ("suffix", "facts", "playable"),
    [
        (".mp4", probe("h264"), True),
        (".MP4", probe("h264", None), True),
        (".mp4", probe("hevc"), False),
        (".mp4", probe("h264", pix_fmt="yuv422p10le"), False),
        (".mov", probe("h264"), False),
        (".avi", probe("mpeg4", "mp3"), False),
        (".mp4", probe("h264", "pcm_s16le"), False),
        (".wav", probe(None, "pcm_s16le"), True),
        (".amr", probe(None, "amr_nb"), False),
    ],
)
def test_which_originals_a_browser_plays(suffix: str, facts: dict, playable: bool) -> None:
    assert browser_playable(suffix, facts) is playable
    assert plan(suffix, facts, 10.0)["proxy"]["make"] is (not playable)


def test_stills_get_a_thumbnail_and_no_proxy_and_sound_gets_no_thumbnail() -> None:
    still = plan(".jpg", probe("mjpeg", None), None)
    assert still == {"thumbnail": {"make": True, "at_s": 0.0}, "proxy": {"make": False, "audio_only": False}}
    assert plan(".amr", probe(None, "amr_nb"), 30)["thumbnail"] == {"make": False}
    assert plan(".mp4", probe("hevc"), 0.6)["thumbnail"]["at_s"] == 0.3


# --- the streaming ZIP ---------------------------------------------------------------------------------


def test_the_zip_is_exactly_as_long_as_announced_and_reads_back() -> None:
    entries = [
        zipstream.Entry("README.txt", 5, lambda: [b"hello"]),
        zipstream.Entry("recordings/1-执法记录.MP4", 3_000_000, lambda: [b"\x01" * 1_000_000] * 3),
        zipstream.Entry("empty", 0, lambda: []),
    ]
    data = b"".join(zipstream.stream(entries, modified=T0))
    assert len(data) == zipstream.archive_size((e.name, e.size) for e in entries)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert [(i.filename, i.file_size, i.compress_type) for i in zf.infolist()] == [
            ("README.txt", 5, 0),
            ("recordings/1-执法记录.MP4", 3_000_000, 0),
            ("empty", 0, 0),
        ]


@pytest.mark.parametrize(("declared", "chunks"), [(4, [b"hello"]), (6, [b"hello"])])
def test_an_entry_that_is_not_its_declared_size_stops_the_stream(declared: int, chunks: list[bytes]) -> None:
    with pytest.raises(zipstream.ZipSizeError):
        b"".join(zipstream.stream([zipstream.Entry("x", declared, lambda: chunks)], modified=T0))


@pytest.mark.parametrize("name", ["../evil", "/abs", ""])
def test_unsafe_entry_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        b"".join(zipstream.stream([zipstream.Entry(name, 0, lambda: [])], modified=T0))
