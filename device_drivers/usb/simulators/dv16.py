"""A DV16 recorder: vendor CDBs on its own LUN, in-process (``execute``) or as bulk-only USB endpoints."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from device_drivers.usb import codecs
from device_drivers.usb.profiles import Profile, shipped_profiles
from device_drivers.usb.protocol_errors import DeviceGoneError, ProtocolError, TransportError, TransportTimeout
from device_drivers.usb.scsi import CSW, pack_csw, unpack_cbw
from device_drivers.usb.simulators.base import SimulatedRecorder


@dataclass
class Dv16Recorder(SimulatedRecorder):
    """Implements :class:`~device_drivers.usb.transport.ScsiTransport` as the device answers it."""

    profile: Profile = field(default_factory=lambda: shipped_profiles()["dv16"])
    status_byte: int = 0  # what command 14 returns next

    def _names(self) -> dict[int, str]:
        return {int(spec["code"]): name for name, spec in self.profile.commands.items()}

    def execute(self, cdb: bytes, *, data_out: bytes | None = None, data_in: int = 0, timeout: float = 2.0) -> bytes:
        frame = self.profile.frame
        direction = "write" if cdb[0] == frame["write"]["opcode"] else "read"
        if cdb[0] != frame[direction]["opcode"] or cdb[1] != frame[direction]["direction"]:
            raise TransportError("illegal request (sense 5/20/00): not a vendor command")
        name = self._names().get(cdb[int(frame["command_byte"])], "unknown")
        self.received(name)
        length = cdb[int(frame["length_byte"])]
        if direction == "write":
            self.status_byte = self._write(name, data_out or b"")
            return b""
        return self._read(name)[:data_in].ljust(min(length, data_in), b"\0")

    def _read(self, name: str) -> bytes:
        if name == "get_id_code":
            return self.id_code.encode("ascii")[:6].ljust(6, b"\0")
        if name == "get_info":
            return codecs.encode_info(self.info, self.profile.info_size)
        if name == "read_resolution":
            return struct.pack("<ii", *self.resolution_wh)
        if name == "read_battery":
            return struct.pack("<i", self.battery_level)
        if name == "sd_status":
            return bytes([1 if self.card else 0, 0, 0, 0])
        if name == "read_password":  # in plain text, as the real firmware hands it out
            return self.password.encode("ascii")[:16].ljust(16, b"\0")
        if name == "return_status":
            return bytes([self.status_byte, 0, 0, 0])
        raise TransportError(f"illegal request: {name} is not a read")

    def _write(self, name: str, data: bytes) -> int:
        if name == "init":
            return 0
        if name == "set_time":
            try:
                self.set_clock(codecs.decode_time_struct(data, self.profile.time_zone))
            except ProtocolError:
                return 1
            return 0
        if name == "set_info":
            self.info = codecs.decode_info(data)
            return 0
        if name == "enter_mass_storage":
            if not self.can_switch():
                return 1
            self.switch_to_disk()
            return 0
        return 1

    def close(self) -> None:
        pass


class Dv16BulkOnly:
    """The same recorder behind USB bulk-only transport: CBW in, data, CSW out (for the BOT backend)."""

    def __init__(self, recorder: Dv16Recorder, *, endpoint_out: int = 0x01, endpoint_in: int = 0x81) -> None:
        self.recorder, self.out, self.inp = recorder, endpoint_out, endpoint_in
        self._pending: tuple[int, bytes, int, bool] | None = None  # tag, cdb, length, data_in
        self._replies: list[bytes] = []
        self.closed = False

    def write(self, endpoint: int, data: bytes, timeout: float) -> int:
        if endpoint != self.out:
            raise TransportError(f"no OUT endpoint {endpoint:#04x}")
        if self._pending is not None:  # the data phase of a write command
            tag, cdb, _length, _ = self._pending
            self._pending = None
            self._run(tag, cdb, data_out=data)
            return len(data)
        tag, cdb, length, data_in, _lun = unpack_cbw(bytes(data))
        if length and not data_in:
            self._pending = (tag, cdb, length, data_in)
        else:
            self._run(tag, cdb, data_in=length)
        return len(data)

    def _run(self, tag: int, cdb: bytes, *, data_out: bytes | None = None, data_in: int = 0) -> None:
        try:
            data = self.recorder.execute(cdb, data_out=data_out, data_in=data_in)
        except (DeviceGoneError, TransportTimeout):
            self._replies = []
            raise
        except TransportError:
            self._replies = [pack_csw(tag, data_in, 1)]
            return
        self._replies = ([data] if data_in else []) + [pack_csw(tag, max(0, data_in - len(data)), 0)]

    def read(self, endpoint: int, size: int, timeout: float) -> bytes:
        if endpoint != self.inp:
            raise TransportError(f"no IN endpoint {endpoint:#04x}")
        if not self._replies:
            if self.recorder.mode != "control":
                raise DeviceGoneError("the recorder left the bus")
            raise TransportTimeout("nothing to read")
        reply = self._replies.pop(0)
        if len(reply) > size and size != CSW.size:
            raise TransportError("babble: the device sent more than asked")
        return reply[:size]

    def close(self) -> None:
        self.closed = True
