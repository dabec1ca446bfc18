"""The common call set (probe, init, login, info, time, battery, resolution, MSDC) over any transport.

One class per dialect; everything that differs between vendors of a dialect (command codes, frame
layout, reply codes, sizes, timeouts) comes from the :class:`~device_drivers.usb.profiles.Profile`.
Failures are :class:`ResultError` with the standard result code, or transport errors; an operation
the family lacks raises :class:`NotSupportedError`. Passwords never appear in a message or a log.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Any

from device_drivers.errors import DriverError
from device_drivers.usb import codecs
from device_drivers.usb.codecs import ZfyInfo
from device_drivers.usb.profiles import Profile
from device_drivers.usb.protocol_errors import (
    NotSupportedError,
    ProtocolError,
    ResultCode,
    ResultError,
    TransportTimeout,
)
from device_drivers.usb.transport import FrameTransport, ScsiTransport

log = logging.getLogger(__name__)


class RecorderProtocol:
    """A recorder's control channel in one dialect. Every operation the family lacks is not supported."""

    def __init__(self, profile: Profile, transport: Any) -> None:
        self.profile = profile
        self.transport = transport
        self.tz = profile.time_zone

    def _unsupported(self, what: str) -> NotSupportedError:
        return NotSupportedError(f"the {self.profile.name} family has no command to {what}")

    def probe(self) -> bool:
        """Is a recorder of this family answering? Timeouts propagate; a wrong answer is False."""
        raise self._unsupported("probe")

    def init(self) -> None:
        raise self._unsupported("init")

    def login(self, password: str) -> None:
        raise self._unsupported("log in")

    def get_id_code(self) -> str:
        raise self._unsupported("read the ID code")

    def get_info(self) -> ZfyInfo:
        raise self._unsupported("read the info block")

    def set_info(self, info: ZfyInfo) -> None:
        raise self._unsupported("write the info block")

    def get_time(self) -> datetime:
        raise self._unsupported("read the clock")

    def set_time(self, when: datetime) -> None:
        raise self._unsupported("set the clock")

    def battery(self) -> int:
        raise self._unsupported("read the battery")

    def resolution(self) -> tuple[int, int]:
        raise self._unsupported("read the resolution")

    def storage(self) -> tuple[int, int]:
        """``(total, free)`` bytes of the recorder's card."""
        raise self._unsupported("read the storage")

    def sd_present(self) -> bool:
        raise self._unsupported("read the SD card status")

    def enter_mass_storage(self) -> None:
        raise self._unsupported("switch to mass storage")

    def list_important(self) -> frozenset[str]:
        """The files the recorder marked important (重要文件), by path or name (profile command ``list_important``)."""
        raise self._unsupported("list the files marked important")

    def close(self) -> None:
        self.transport.close()


class Dv16Protocol(RecorderProtocol):
    """SCSI vendor CDBs to the recorder's LUN; status (command 14) read after each write."""

    transport: ScsiTransport

    def _cdb(self, name: str, length: int) -> bytes:
        spec = self.profile.commands[name]
        frame = self.profile.frame
        kind = frame[spec.get("dir", "read")]
        cdb = bytearray(int(frame.get("cdb_length", 16)))
        cdb[0], cdb[1] = int(kind["opcode"]), int(kind["direction"])
        cdb[int(frame["command_byte"])] = int(spec["code"])
        cdb[int(frame["length_byte"])] = length & 0xFF
        return bytes(cdb)

    def _read(self, name: str) -> bytes:
        spec = self.profile.commands.get(name)
        if spec is None:
            raise self._unsupported(name.replace("_", " "))
        length = int(spec.get("length", 4))
        data = self.transport.execute(self._cdb(name, length), data_in=length, timeout=self.profile.timeout("read"))
        if len(data) < length:
            raise ProtocolError(f"{name}: {len(data)} bytes, expected {length}")
        return data

    def _write(self, name: str, data: bytes = b"") -> bool:
        """Send a write command; True when the return status (command 14) says OK."""
        if name not in self.profile.commands:
            raise self._unsupported(name.replace("_", " "))
        self.transport.execute(self._cdb(name, len(data)), data_out=data or None, timeout=self.profile.timeout("write"))
        return self._status_ok()

    def _status_ok(self) -> bool:
        return self._read("return_status")[0] == 0

    def probe(self) -> bool:
        try:
            self._read("return_status")
        except (ProtocolError, ResultError):
            return False
        return True

    def init(self) -> None:
        if not self._write("init"):
            raise ResultError(ResultCode.CONNECT_FAILED, "the device refused init")

    def login(self, password: str) -> None:
        # The device enforces nothing: the host compares with what command 13 returns.
        stored = codecs.ascii_field(self._read("read_password"))
        if not hmac.compare_digest(stored.encode(), password.encode()):
            raise ResultError(ResultCode.CHECK_PWD_FAILED, "the configured password is not the device's")

    def get_id_code(self) -> str:
        return codecs.ascii_field(self._read("get_id_code"))

    def get_info(self) -> ZfyInfo:
        return codecs.decode_info(self._read("get_info")[: self.profile.info_size])

    def set_info(self, info: ZfyInfo) -> None:
        if not self._write("set_info", codecs.encode_info(info, self.profile.info_size)):
            raise ResultError(ResultCode.CONNECT_FAILED, "the device refused the info block")

    def set_time(self, when: datetime) -> None:
        if not self._write("set_time", codecs.encode_time_struct(when, self.tz)):
            raise ResultError(ResultCode.SET_SYSTEMTIME_FAILED, "the device refused the time")

    def battery(self) -> int:
        return codecs.parse_battery(codecs.int32s(self._read("read_battery"), 1)[0])

    def resolution(self) -> tuple[int, int]:
        w, h = codecs.int32s(self._read("read_resolution"), 2)
        return w, h

    def sd_present(self) -> bool:
        return self._read("sd_status")[0] != 0

    def enter_mass_storage(self) -> None:
        if not self.sd_present():
            raise ResultError(ResultCode.MSDC_FAILED, "no SD card in the recorder")
        # As the vendor hosts do: write command 6 and read no status; the device re-enumerates at once.
        self.transport.execute(self._cdb("enter_mass_storage", 0), timeout=self.profile.timeout("write"))


class AsciiFrameProtocol(RecorderProtocol):
    """``@Cmd;<len>;<payload>;#`` frames; one fixed-size read per reply."""

    transport: FrameTransport

    def _frame(self, cmd: str, payload: str, length: int | None = None) -> bytes:
        template = str(self.profile.frame.get("template", "@{cmd};{length};{payload};#"))
        text = template.format(cmd=cmd, length=len(payload) if length is None else length, payload=payload)
        return text.encode(self.profile.frame.get("encoding", "ascii"))

    def _ask(self, name: str, payload: str | None = None, length: int | None = None) -> str:
        spec = self.profile.commands.get(name)
        if spec is None:
            raise self._unsupported(name.replace("_", " "))
        payload = str(spec.get("payload", "")) if payload is None else payload
        length = spec.get("length", length)
        self.transport.send(self._frame(str(spec["cmd"]), payload, length), self.profile.timeout("write"))
        reply = self.transport.receive(self.profile.timeout("read"))
        return reply.split(b"\0", 1)[0].decode(self.profile.frame.get("encoding", "ascii"), errors="replace")

    def _fields(self, reply: str) -> list[str]:
        return reply.strip().lstrip("@").rstrip("#").split(self.profile.frame.get("separator", ";"))

    def probe(self) -> bool:
        expect = str(self.profile.commands["probe"].get("expect", "OK"))
        return expect in self._ask("probe")

    def init(self) -> None:
        if not self.probe():
            raise ResultError(ResultCode.CONNECT_FAILED, "the device did not answer the version probe")

    def login(self, password: str) -> None:
        raise self._unsupported("log in (the device has no password)")

    def get_id_code(self) -> str:
        field = int(self.profile.commands["get_id_code"].get("field", 2))
        fields = self._fields(self._ask("get_id_code"))
        if len(fields) <= field or not fields[field].strip():
            raise ProtocolError(f"no device ID in the reply ({len(fields)} fields)")
        return fields[field].strip()

    def set_time(self, when: datetime) -> None:
        for name in ("set_date", "set_time"):
            spec = self.profile.commands.get(name)
            if spec is None:
                raise self._unsupported("set the clock")
            text = codecs.format_time_text(when, self.tz, str(spec["time_format"]))
            reply = self._ask(name, text, spec.get("length"))
            if "OK" not in reply.upper():
                raise ResultError(ResultCode.SET_SYSTEMTIME_FAILED, f"the device answered {reply.strip()!r}")

    def enter_mass_storage(self) -> None:
        try:
            reply = self._ask("enter_mass_storage")
        except TransportTimeout:
            log.info("%s: no reply to the switch; waiting for the disk", self.profile.name)
            return
        if any(bad in reply.upper() for bad in ("ERR", "NG", "FAIL")):
            raise ResultError(ResultCode.MSDC_FAILED, f"the device answered {reply.strip()!r}")


class E12Protocol(RecorderProtocol):
    """GBK text messages; the device answers ``E12DATR880`` (processing) first, then the result."""

    transport: FrameTransport
    MAX_PROCESSING = 20
    switched = False
    healthy = True

    @property
    def encoding(self) -> str:
        return str(self.profile.socket.get("encoding", "gbk"))

    def _send(self, payload: bytes | str) -> None:
        data = payload.encode(self.encoding) if isinstance(payload, str) else payload
        try:
            self.transport.send(data, self.profile.timeout("write"))
        except DriverError:
            self.healthy = False
            raise

    def _receive(self) -> bytes:
        try:
            return self.transport.receive(self.profile.timeout("read"))
        except DriverError:
            self.healthy = False
            raise

    def _call(self, name: str, argument: bytes | str | None = None) -> bytes:
        spec = self.profile.commands.get(name)
        if spec is None:
            raise self._unsupported(name.replace("_", " "))
        processing = str(self.profile.frame.get("processing", "E12DATR880")).encode()
        self._send(str(spec["code"]))
        reply = self._receive()
        if reply.strip() != processing:
            raise ProtocolError(f"{spec['code']}: expected the processing reply, got {len(reply)} bytes")
        if argument is not None:
            self._send(argument)
        for _ in range(self.MAX_PROCESSING):
            reply = self._receive()
            if reply.strip() != processing:
                return reply
        raise ProtocolError(f"{spec['code']}: the device stays busy")

    def _result(self, name: str, reply: bytes, code: ResultCode, what: str) -> None:
        spec = self.profile.commands[name]
        text = reply.decode(self.encoding, errors="replace").strip()
        if text.startswith(str(spec.get("ok", "R"))):
            return
        if "fail" in spec and text.startswith(str(spec["fail"])):
            raise ResultError(code, what)
        raise ProtocolError(f"{spec['code']}: unexpected result {text[:16]!r}")

    def _text(self, name: str) -> str:
        return self._call(name).decode(self.encoding, errors="replace").strip()

    def probe(self) -> bool:
        ping, pong = self.profile.frame.get("ping"), self.profile.frame.get("pong")
        if not ping:
            return True
        self._send(str(ping))
        return self._receive().strip() == str(pong).encode()

    def init(self) -> None:
        self._call("init")

    def login(self, password: str) -> None:
        self._result(
            "login",
            self._call("login", password),
            ResultCode.CHECK_PWD_FAILED,
            "the device refused the configured password",
        )

    def get_id_code(self) -> str:
        return self._text("get_id_code")

    def get_info(self) -> ZfyInfo:
        raw = self._call("get_info")
        return codecs.decode_info(raw)

    def set_info(self, info: ZfyInfo) -> None:
        self._result(
            "set_info",
            self._call("set_info", codecs.encode_info(info, self.profile.info_size)),
            ResultCode.CONNECT_FAILED,
            "the device refused the info block",
        )

    def get_time(self) -> datetime:
        return codecs.parse_time_text(self._text("get_time"), self.tz)

    def set_time(self, when: datetime) -> None:
        fmt = str(self.profile.frame.get("time_format", "%Y-%m-%d %-H:%M:%S"))
        self._result(
            "set_time",
            self._call("set_time", codecs.format_time_text(when, self.tz, fmt)),
            ResultCode.SET_SYSTEMTIME_FAILED,
            "the device refused the time",
        )

    def battery(self) -> int:
        return codecs.parse_battery(self._text("read_battery"))

    def list_important(self) -> frozenset[str]:
        return codecs.parse_file_list(self._text("list_important"))

    def resolution(self) -> tuple[int, int]:
        return codecs.parse_resolution(self._text("read_resolution"))

    def enter_mass_storage(self) -> None:
        self._result(
            "enter_mass_storage",
            self._call("enter_mass_storage"),
            ResultCode.MSDC_FAILED,
            "the device refused disk mode (no SD card, or recording)",
        )
        self.switched = True

    def close(self) -> None:
        """Release the device politely, unless it already left for disk mode or stopped answering."""
        try:
            if "release" in self.profile.commands and not self.switched and self.healthy:
                self._call("release")
        except DriverError:
            pass
        finally:
            super().close()


DIALECT_CLASSES: dict[str, type[RecorderProtocol]] = {
    "dv16": Dv16Protocol,
    "ascii_frames": AsciiFrameProtocol,
    "e12": E12Protocol,
}


def open_protocol(profile: Profile, transport: ScsiTransport | FrameTransport) -> RecorderProtocol:
    return DIALECT_CLASSES[profile.dialect](profile, transport)
