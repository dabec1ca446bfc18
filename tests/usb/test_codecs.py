"""ZFY_INFO blocks (94 and 89 bytes, GBK, padded and truncated) and the time payloads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from device_drivers.usb import codecs
from device_drivers.usb.codecs import ZfyInfo
from device_drivers.usb.protocol_errors import ProtocolError

INFO = ZfyInfo("DSJ0001", "102345", "张三", "330100000001", "杭州市市场监督管理局稽查支队")


@pytest.mark.parametrize("size", [94, 89])
def test_info_round_trips_in_both_layouts(size: int) -> None:
    raw = codecs.encode_info(INFO, size)
    assert len(raw) == size
    assert codecs.decode_info(raw) == INFO


def test_the_89_byte_layout_has_the_documented_offsets() -> None:
    assert codecs.info_offsets(89) == {"serial": 0, "officer_no": 7, "officer_name": 13, "unit_no": 45, "unit_name": 57}
    raw = codecs.encode_info(INFO, 89)
    assert raw[0:7] == b"DSJ0001" and raw[7:13] == b"102345"  # full width: no room for a NUL
    assert raw[13:17] == "张三".encode("gbk") and raw[17:45] == b"\0" * 28


def test_the_94_byte_layout_keeps_a_nul_after_every_field() -> None:
    raw = codecs.encode_info(ZfyInfo("ABCDEFGHIJ", "1234567890"), 94)
    assert raw[0:8] == b"ABCDEFG\0" and raw[8:15] == b"123456\0"


@pytest.mark.parametrize(("size", "width"), [(89, 32), (94, 32)])
def test_long_gbk_names_are_cut_at_a_character_boundary(size: int, width: int) -> None:
    name = "一二三四五六七八九十" * 2  # 20 characters, 40 bytes
    odd = "A" + name  # one ASCII byte first: a naive cut would split a character
    for text, kept in ((name, name[:16]), (odd, odd[:16])):
        decoded = codecs.decode_info(codecs.encode_info(ZfyInfo(officer_name=text), size))
        assert decoded.officer_name == kept
        assert len(kept.encode("gbk")) <= width


def test_undecodable_bytes_and_wrong_sizes() -> None:
    raw = bytearray(codecs.encode_info(INFO, 89))
    raw[13:15] = b"\xff\xff"
    assert "\ufffd" in codecs.decode_info(bytes(raw)).officer_name
    with pytest.raises(ProtocolError, match="expected 94 or 89"):
        codecs.decode_info(b"\0" * 90)
    with pytest.raises(ValueError):
        codecs.encode_info(INFO, 90)


def test_time_struct_is_little_endian_year_then_local_fields() -> None:
    when = datetime(2026, 11, 20, 1, 30, 5, tzinfo=UTC)  # 09:30:05 in Beijing
    raw = codecs.encode_time_struct(when, "Asia/Shanghai")
    assert raw == bytes([0xEA, 0x07, 11, 20, 9, 30, 5])
    assert codecs.decode_time_struct(raw, "Asia/Shanghai") == when
    with pytest.raises(ProtocolError):
        codecs.decode_time_struct(bytes([0xEA, 0x07, 13, 40, 9, 30, 5]), "Asia/Shanghai")


def test_text_times_as_the_e12_family_writes_them() -> None:
    when = datetime(2017, 5, 15, 0, 0, tzinfo=UTC)
    assert codecs.format_time_text(when, "Asia/Shanghai", "%Y-%m-%d %-H:%M:%S") == "2017-05-15 8:00:00"
    assert codecs.parse_time_text("2017-05-15 8:00:00", "Asia/Shanghai") == when
    assert codecs.parse_time_text("20170515080000", "Asia/Shanghai") == when
    assert codecs.parse_time_text(str(int(when.timestamp() * 1000)), "UTC") == when  # epoch ms
    with pytest.raises(ProtocolError):
        codecs.parse_time_text("yesterday", "UTC")


def test_numbers() -> None:
    assert codecs.parse_resolution("1920*1080") == (1920, 1080)
    assert codecs.parse_battery("76") == 76
    with pytest.raises(ProtocolError):
        codecs.parse_battery("140")
    with pytest.raises(ProtocolError):
        codecs.parse_resolution("big")
    assert codecs.RESOLUTION_CODES[3] == (1920, 1080, 30)
