"""An Ambarella-based recorder: ``@Cmd;len;payload;#`` frames on bulk endpoints 0x01/0x81."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from device_drivers.usb import codecs
from device_drivers.usb.profiles import Profile, shipped_profiles
from device_drivers.usb.protocol_errors import TransportError, TransportTimeout
from device_drivers.usb.simulators.base import SimulatedRecorder


@dataclass
class AmbarellaRecorder(SimulatedRecorder):
    """Implements :class:`~device_drivers.usb.transport.UsbEndpoints`; each reply is 64 bytes, NUL-padded."""

    profile: Profile = field(default_factory=lambda: shipped_profiles()["ambarella"])
    id_code: str = "AMB20260001"
    _reply: bytes | None = None
    _date: str | None = None
    closed: bool = False

    def _by_cmd(self) -> dict[str, str]:
        return {str(spec["cmd"]): name for name, spec in self.profile.commands.items()}

    def write(self, endpoint: int, data: bytes, timeout: float) -> int:
        if endpoint != self.profile.usb["endpoint_out"]:
            raise TransportError(f"no OUT endpoint {endpoint:#04x}")
        text = bytes(data).decode("ascii", errors="replace")
        if not (text.startswith("@") and text.endswith(";#")) or text.count(";") != 3:
            self._reply = b"@ERR;#"
            return len(data)
        cmd, _length, payload = text[1:-2].split(";")
        name = self._by_cmd().get(cmd, cmd)
        try:
            self.received(name)
        except TransportTimeout:  # a hung firmware takes the frame and never answers
            self._reply = None
            return len(data)
        self._reply = self._answer(cmd, name, payload).encode("ascii")
        return len(data)

    def _answer(self, cmd: str, name: str, payload: str) -> str:
        if name == "probe":
            return "@Ver;OK;V2.1.7;#"
        if name == "get_id_code":
            return f"@Gdv;{len(self.id_code)};{self.id_code};#"
        if name == "set_date":
            self._date = payload
            return "@Sdt;OK;#"
        if name == "set_time":
            try:
                naive = datetime.strptime(f"{self._date}{payload[:6]}", "%Y%m%d%H%M%S")
            except (TypeError, ValueError):
                return "@Stm;ERR;#"
            self.set_clock(codecs.from_local(naive, self.profile.time_zone))
            return "@Stm;OK;#"
        if name == "enter_mass_storage":
            if not self.can_switch():
                return "@ATH;ERR;#"
            self._switch_after_reply = True
            return "@ATH;OK;#"
        return f"@{cmd};ERR;#"

    _switch_after_reply: bool = False

    def read(self, endpoint: int, size: int, timeout: float) -> bytes:
        if endpoint != self.profile.usb["endpoint_in"]:
            raise TransportError(f"no IN endpoint {endpoint:#04x}")
        if self._reply is None:
            raise TransportTimeout("no reply pending")
        reply, self._reply = self._reply, None
        if self._switch_after_reply:
            self._switch_after_reply = False
            self.switch_to_disk()
        return reply[:size].ljust(size, b"\0")

    def close(self) -> None:
        self.closed = True
