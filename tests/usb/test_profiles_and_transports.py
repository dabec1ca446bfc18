"""Profiles as data (a new vendor is a new file), and the SCSI, bulk and socket backends."""

from __future__ import annotations

import copy
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from device_drivers.usb.profiles import (
    ProfileError,
    load_profiles,
    normalize_scsi,
    profile_from_dict,
    shipped_profiles,
)
from device_drivers.usb.protocol import open_protocol
from device_drivers.usb.protocol_errors import ProtocolError, TransportError
from device_drivers.usb.scsi import BulkOnlyScsi, SgIoScsi, pack_cbw, pack_csw, unpack_cbw
from device_drivers.usb.simulators import Dv16BulkOnly, Dv16Recorder, E12Recorder, E12Server
from device_drivers.usb.socket_transport import SocketFrames, encode_frame
from device_drivers.usb.vendor_driver import ClockPolicy, handshake
from tests.usb.conftest import PASSWORD, fast_profile


def raw_profile(name: str) -> dict[str, Any]:
    path = Path(__file__).parents[2] / "device_drivers" / "usb" / "profiles" / f"{name}.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_the_three_documented_families_ship_as_profiles() -> None:
    profiles = shipped_profiles()
    assert set(profiles) == {"dv16", "ambarella", "e12"}
    assert profiles["dv16"].scsi_ids == {"dv16devicev1.00"}
    assert profiles["ambarella"].usb_ids == {(0x4255, 0x0001)}
    assert (profiles["ambarella"].usb["endpoint_out"], profiles["ambarella"].usb["endpoint_in"]) == (0x01, 0x81)
    assert profiles["dv16"].timeout("read") == 2.0 and profiles["dv16"].timeout("write") == 10.0
    assert profiles["e12"].info_size == 89 and profiles["dv16"].info_size == 94
    assert normalize_scsi("DV16    Device           V1.00") == "dv16devicev1.00"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("transport"), "missing 'transport'"),
        (lambda p: p.update(transport="serial"), "transport must be one of"),
        (lambda p: p.update(dialect="e12"), "runs over socket, not scsi"),
        (lambda p: p["commands"].pop("read_password"), "'read_password'"),
        (lambda p: p["match"].update(usb=["4255-0001"]), "VID:PID"),
        (lambda p: p.update(info_size=90), "info_size must be 94 or 89"),
        (lambda p: p["timeouts"].update(read=-1), "timeouts.read"),
        (lambda p: p["usb"].pop("endpoint_in"), "missing 'endpoint_in'"),
        (lambda p: p.update(time_zone="Mars/Olympus"), "unknown time_zone"),
    ],
)
def test_invalid_profiles_are_refused_with_the_key_at_fault(change: Any, message: str) -> None:
    data = copy.deepcopy(raw_profile("dv16"))
    change(data)
    with pytest.raises(ProfileError, match=message):
        profile_from_dict(data, "bureau/dv16.json")


def test_a_new_vendor_is_a_new_profile_not_new_code(tmp_path: Path) -> None:
    """Another Android vendor of the E12 dialect: other codes, little-endian lengths, a VID:PID."""
    data = raw_profile("e12")
    data.update(name="acme-x9", title="ACME X9")
    data["match"]["usb"] = ["abcd:1234"]
    data["socket"]["byteorder"] = "little"
    data["commands"]["login"] = {"code": "X9CMDL001", "argument": "password", "ok": "OK1", "fail": "NG1"}
    (tmp_path / "acme-x9.json").write_text(json.dumps(data))
    profiles = load_profiles([tmp_path])
    assert {"dv16", "ambarella", "e12", "acme-x9"} <= set(profiles)
    profile = profiles["acme-x9"].with_overrides(timeouts={"read": 3.0, "write": 3.0})
    recorder = E12Recorder(profile=profile, password=PASSWORD)
    with E12Server(recorder) as server:
        proto = open_protocol(profile, SocketFrames(*server.address, byteorder="little"))
        hs = handshake(proto, passwords=lambda s: PASSWORD, clock=ClockPolicy(station_synchronized=True))
    assert hs.identity.serial == "DSJ0001" and hs.identity.family == "acme-x9"
    assert "login" in recorder.commands and recorder.mode == "disk"


def test_cbw_and_csw_layout() -> None:
    cbw = pack_cbw(7, bytes([0xFD, 0x81, 0, 0, 0, 3, 0, 94]) + bytes(8), 94, True)
    assert len(cbw) == 31 and cbw[:4] == b"USBC" and cbw[12] == 0x80 and cbw[14] == 16
    assert unpack_cbw(cbw)[:4] == (7, bytes([0xFD, 0x81, 0, 0, 0, 3, 0, 94]) + bytes(8), 94, True)
    assert pack_csw(7, 0, 0) == b"USBS" + (7).to_bytes(4, "little") + bytes(5)


def test_bulk_only_transport_reports_a_failed_command() -> None:
    recorder = Dv16Recorder(profile=fast_profile("dv16"))
    scsi = BulkOnlyScsi(Dv16BulkOnly(recorder), endpoint_out=1, endpoint_in=0x81)
    with pytest.raises(TransportError, match="CSW status 1"):
        scsi.execute(bytes([0x12]) + bytes(15), data_in=36)  # INQUIRY is not a vendor command


def test_sg_io_on_something_that_is_not_a_scsi_device(tmp_path: Path) -> None:
    plain = tmp_path / "not-sg"
    plain.write_bytes(b"")
    scsi = SgIoScsi(plain)
    try:
        with pytest.raises(TransportError, match="SG_IO"):
            scsi.execute(bytes(16), data_in=4)
    finally:
        scsi.close()


def test_socket_frames_length_prefixed_over_tcp() -> None:
    profile = fast_profile("e12")
    recorder = E12Recorder(profile=profile, password=PASSWORD)
    with E12Server(recorder) as server:
        link = SocketFrames(*server.address)
        link.send(b"E12CMDF808", 3.0)
        assert link.receive(1.0) == b"E12CMDF809"
        link.send(b"E12CMDS009", 3.0)
        assert [link.receive(1.0), link.receive(1.0)] == [b"E12DATR880", b"ID0001"]
        link.close()
    assert encode_frame(b"abc") == b"\0\0\0\x03abc"
    with pytest.raises(ProtocolError):
        encode_frame(b"x" * 1025)


def test_socket_frames_json_lines_and_oversized_frames() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            line = conn.makefile("rb").readline()
            conn.sendall(b'{"Head": {"FunctionID": 1}, "Body": {"Echo": ' + line.strip() + b"}}\n")
            conn.sendall((5000).to_bytes(4, "big"))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    link = SocketFrames(*listener.getsockname()[:2], framing="json_lines")
    link.send(b'{"x": 1}', 3.0)
    assert json.loads(link.receive(1.0))["Body"]["Echo"] == {"x": 1}
    link.framing = "length_prefixed"
    with pytest.raises(ProtocolError, match="at most 1024"):
        link.receive(1.0)
    link.close()
    listener.close()
