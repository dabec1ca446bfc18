"""The common call set against each family's simulator: handshake, passwords, card, clock, faults."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from device_drivers.errors import DeviceGoneError, IdentityError
from device_drivers.usb.protocol_errors import ResultCode, ResultError, TransportTimeout
from device_drivers.usb.simulators import Dv16Recorder, E12Recorder
from device_drivers.usb.vendor_driver import ClockPolicy, PasswordMissing, Step, handshake
from tests.usb.conftest import PASSWORD, USB, fast_profile, make_recorder, protocol_for

FAMILIES = ["dv16", "ambarella", "e12"]
WITH_PASSWORD = ["dv16", "e12"]  # the Ambarella family has no login


def always(serials: object) -> str:
    return PASSWORD


def run(family: str, recorder: object, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("passwords", always)
    kw.setdefault("clock", ClockPolicy(station_synchronized=True))
    return handshake(protocol_for(recorder), device=USB[family], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", FAMILIES)
def test_handshake_reads_identity_and_status_then_switches_to_disk(family: str) -> None:
    recorder = make_recorder(family)
    switched: list[str] = []
    recorder.on_disk_mode = lambda: switched.append("disk")
    steps: list[str] = []

    hs = run(family, recorder, on_step=lambda step, msg: steps.append(step))

    assert recorder.mode == "disk" and switched == ["disk"]
    if family == "ambarella":  # no info block: identity is the device ID
        assert hs.identity.serial == "AMB20260001" and hs.identity.officer_no is None
    else:
        assert (hs.identity.serial, hs.identity.officer_no, hs.identity.officer_name) == ("DSJ0001", "102345", "张三")
        assert hs.identity.unit_name == "杭州市市场监督管理局稽查支队"
        assert hs.status.battery_percent == 76
        assert hs.resolution == (1920, 1080)
    assert hs.identity.family == family
    assert steps[0] == Step.CONNECTING and steps[-1] == Step.SWITCHING
    assert (Step.LOGGING_IN in steps) == (family in WITH_PASSWORD)
    # the clock offset is measured before the clock is set, where the family can read its clock
    if family == "e12":
        assert hs.status.clock_offset_seconds == pytest.approx(-95, abs=1.5)
    else:
        assert hs.status.clock is None and hs.status.read_at is not None
    assert hs.clock_set_to is not None
    assert abs((recorder.now() - datetime.now(UTC)).total_seconds()) < 1.5  # set from the station


def test_dv16_over_bulk_only_transport_cbw_and_csw() -> None:
    recorder = make_recorder("dv16")
    hs = handshake(
        protocol_for(recorder, bulk_only=True),
        passwords=always,
        device=USB["dv16"],
        clock=ClockPolicy(station_synchronized=True),
    )
    assert hs.identity.serial == "DSJ0001" and recorder.mode == "disk"


@pytest.mark.parametrize("family", WITH_PASSWORD)
def test_a_wrong_password_stops_before_anything_is_read(family: str) -> None:
    recorder = make_recorder(family)
    with pytest.raises(ResultError) as err:
        run(family, recorder, passwords=lambda s: "000000")
    assert err.value.code == ResultCode.CHECK_PWD_FAILED
    assert recorder.mode == "control"
    assert "get_info" not in recorder.commands and "enter_mass_storage" not in recorder.commands
    assert "000000" not in str(err.value) and PASSWORD not in str(err.value)


@pytest.mark.parametrize("family", WITH_PASSWORD)
def test_no_configured_password_is_not_replaced_by_a_default(family: str) -> None:
    recorder = make_recorder(family)
    asked: list[list[str]] = []

    def none_configured(serials: list[str]) -> None:
        asked.append(list(serials))

    with pytest.raises(PasswordMissing, match=f"no device password configured for the {family} family"):
        run(family, recorder, passwords=none_configured)
    assert asked and asked[0]  # looked up by the device's serials first (USB serial / ID code)
    assert "login" not in recorder.commands


@pytest.mark.parametrize("family", FAMILIES)
def test_a_missing_sd_card_refuses_disk_mode(family: str) -> None:
    recorder = make_recorder(family, card=False)
    with pytest.raises(ResultError) as err:
        run(family, recorder)
    assert err.value.code == ResultCode.MSDC_FAILED
    assert recorder.mode == "control"


def test_e12_refuses_disk_mode_while_recording() -> None:
    recorder = make_recorder("e12", recording=True)
    with pytest.raises(ResultError, match="MSDC_FAILED"):
        run("e12", recorder)


@pytest.mark.parametrize(
    ("family", "command"), [("dv16", "get_info"), ("ambarella", "get_id_code"), ("e12", "read_battery")]
)
def test_a_hung_firmware_times_out(family: str, command: str) -> None:
    recorder = make_recorder(family, hang={command})
    with pytest.raises(TransportTimeout):
        run(family, recorder)
    assert recorder.mode == "control"


@pytest.mark.parametrize("family", FAMILIES)
def test_unplugged_mid_handshake(family: str) -> None:
    recorder = make_recorder(family, vanish_after=3)
    with pytest.raises(DeviceGoneError):
        run(family, recorder)
    assert recorder.mode == "gone"


def test_e12_two_step_replies_and_busy_device() -> None:
    recorder = make_recorder("e12", busy_replies=4)  # three extra E12DATR880 before each result
    hs = run("e12", recorder)
    assert hs.identity.serial == "DSJ0001"


def test_e12_gbk_info_is_89_bytes_and_truncated_as_stored() -> None:
    from device_drivers.usb.codecs import ZfyInfo

    long_unit = "浙江省杭州市市场监督管理局执法稽查支队第一大队"  # 24 characters: more than 32 bytes
    recorder = make_recorder("e12", info=ZfyInfo("E120007", "204060", "欧阳娜娜", "330100000002", long_unit))
    hs = run("e12", recorder)
    assert hs.identity.unit_name == long_unit[:16]
    assert hs.identity.officer_name == "欧阳娜娜"


@pytest.mark.parametrize(
    ("policy", "offset", "expected"),
    [
        (ClockPolicy("never", station_synchronized=True), 500.0, False),
        (ClockPolicy("always", station_synchronized=True), 0.0, True),
        (ClockPolicy("if_off", 2.0, station_synchronized=True), 1.0, False),
        (ClockPolicy("if_off", 2.0, station_synchronized=True), -95.0, True),
        (ClockPolicy("if_off", 2.0, station_synchronized=True), None, True),
        (ClockPolicy("always", station_synchronized=False), 500.0, False),
        (ClockPolicy("always", station_synchronized=False, require_station_sync=False), 500.0, True),
        (ClockPolicy("if_off", station_synchronized=None), 500.0, True),
    ],
)
def test_clock_policy(policy: ClockPolicy, offset: float | None, expected: bool) -> None:
    assert policy.decide(offset)[0] is expected


def test_clock_left_alone_when_within_tolerance_or_station_unsynchronised() -> None:
    recorder = make_recorder("e12", clock_offset=timedelta(seconds=0.5))
    hs = run("e12", recorder)
    assert hs.clock_set_to is None and recorder.clock_set_to is None
    recorder = make_recorder("e12")
    hs = run("e12", recorder, clock=ClockPolicy("always", station_synchronized=False))
    assert hs.clock_set_to is None and hs.status.clock_offset_seconds == pytest.approx(-95, abs=1.5)


def test_a_refused_clock_is_a_warning_not_a_failed_dock() -> None:
    recorder = Dv16Recorder(profile=fast_profile("dv16"), password=PASSWORD)
    original = Dv16Recorder._write

    def refuse_time(self: Dv16Recorder, name: str, data: bytes) -> int:
        return 1 if name == "set_time" else original(self, name, data)

    recorder._write = refuse_time.__get__(recorder)  # type: ignore[method-assign]
    hs = run("dv16", recorder)
    assert hs.clock_set_to is None and any("clock not set" in w for w in hs.warnings)
    assert recorder.mode == "disk"


def test_no_serial_anywhere_is_an_identity_error() -> None:
    from device_drivers.usb.codecs import ZfyInfo

    recorder: E12Recorder = make_recorder("e12", info=ZfyInfo(), id_code="")  # type: ignore[assignment]
    device = USB["e12"].__class__(**{**USB["e12"].__dict__, "serial": None})
    with pytest.raises(IdentityError):
        handshake(protocol_for(recorder), device=device, passwords=always)


def test_passwords_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for family in WITH_PASSWORD:
        run(family, make_recorder(family))
        with pytest.raises(ResultError):
            run(family, make_recorder(family), passwords=lambda s: "Wr0ngPw")
    assert PASSWORD not in caplog.text and "Wr0ngPw" not in caplog.text
