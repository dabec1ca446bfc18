"""An E12-family recorder: GBK messages, ``E12DATR880`` first, then the result; in-process or over TCP."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from dataclasses import dataclass, field

from device_drivers.usb import codecs
from device_drivers.usb.profiles import Profile, shipped_profiles
from device_drivers.usb.protocol_errors import DeviceGoneError, ProtocolError, TransportTimeout
from device_drivers.usb.simulators.base import SimulatedRecorder

log = logging.getLogger(__name__)
NOT_LOGGED_IN = b"E12DATR401"


@dataclass
class E12Recorder(SimulatedRecorder):
    """The device side: ``handle(message)`` returns the messages it sends back, in order."""

    profile: Profile = field(default_factory=lambda: shipped_profiles()["e12"])
    busy_replies: int = 1  # how many E12DATR880 precede each result
    logged_in: bool = False
    _awaiting: str | None = None  # command waiting for its argument

    @property
    def processing(self) -> bytes:
        return str(self.profile.frame["processing"]).encode()

    def _by_code(self) -> dict[str, str]:
        return {str(spec["code"]): name for name, spec in self.profile.commands.items()}

    def handle(self, message: bytes) -> list[bytes]:
        if self._awaiting is not None:
            awaiting, self._awaiting = self._awaiting, None
            return self._result(self._argument(awaiting, message))
        text = message.decode("gbk", errors="replace").strip()
        if text == self.profile.frame.get("ping"):
            self.received("ping")
            return [str(self.profile.frame["pong"]).encode()]
        name = self._by_code().get(text)
        if name is None:
            return [b"E12DATR404"]
        self.received(name)
        if self.profile.commands[name].get("argument"):
            self._awaiting = name
            return [self.processing]
        return [self.processing, *self._result(self._read(name))]

    def _result(self, reply: bytes) -> list[bytes]:
        return [self.processing] * (self.busy_replies - 1) + [reply]

    def _needs_login(self, name: str) -> bool:
        return bool(self.password) and not self.logged_in and name not in ("init", "release", "get_id_code")

    def _read(self, name: str) -> bytes:
        if self._needs_login(name):
            return NOT_LOGGED_IN
        spec = self.profile.commands[name]
        if name == "init":
            return b"R041"
        if name == "release":
            self.logged_in = False
            return b"R051"
        if name == "get_info":
            return codecs.encode_info(self.info, self.profile.info_size)
        if name == "get_time":
            return codecs.format_time_text(self.now(), self.profile.time_zone, "%Y-%m-%d %-H:%M:%S").encode()
        if name == "read_battery":
            return str(self.battery_level).encode()
        if name == "read_resolution":
            return f"{self.resolution_wh[0]}*{self.resolution_wh[1]}".encode()
        if name == "get_id_code":
            return self.id_code.encode()
        if name == "list_important":
            return "\n".join(self.important_files).encode("gbk")
        if name == "enter_mass_storage":
            if not self.can_switch():
                return str(spec["fail"]).encode()
            return str(spec["ok"]).encode()  # the switch happens once the reply is out
        return b"E12DATR404"

    def _argument(self, name: str, argument: bytes) -> bytes:
        spec = self.profile.commands[name]
        ok, fail = str(spec["ok"]).encode(), str(spec["fail"]).encode()
        if name in ("login", "login_user"):
            self.logged_in = bool(self.password) and argument.decode("ascii", "replace") == self.password
            return ok if self.logged_in else fail
        if self._needs_login(name):
            return NOT_LOGGED_IN
        try:
            if name == "set_time":
                self.set_clock(codecs.parse_time_text(argument.decode("gbk"), self.profile.time_zone))
            elif name == "set_info":
                self.info = codecs.decode_info(argument)
        except (ProtocolError, UnicodeDecodeError):
            return fail
        return ok

    def after_reply(self, reply: bytes) -> None:
        """The switch to disk mode happens once the MSDC success is on the wire."""
        ok = str(self.profile.commands["enter_mass_storage"]["ok"]).encode()
        if self.commands and self.commands[-1] == "enter_mass_storage" and reply == ok and self.mode == "control":
            self.switch_to_disk()


class E12Link:
    """In-process :class:`~device_drivers.usb.transport.FrameTransport` to an :class:`E12Recorder`."""

    def __init__(self, recorder: E12Recorder) -> None:
        self.recorder = recorder
        self._inbox: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes, timeout: float) -> None:
        if self.recorder.mode == "gone":
            raise DeviceGoneError("the recorder is gone")
        try:
            self._inbox.extend(self.recorder.handle(frame))
        except TransportTimeout:
            self._inbox.clear()

    def receive(self, timeout: float) -> bytes:
        if not self._inbox:
            if self.recorder.mode == "gone":
                raise DeviceGoneError("the recorder is gone")
            raise TransportTimeout("no answer")
        reply = self._inbox.pop(0)
        if not self._inbox:
            self.recorder.after_reply(reply)
        return reply

    def close(self) -> None:
        self.closed = True


class E12Server:
    """The recorder's socket on 127.0.0.1: 4-byte length (profile byte order), then GBK payload."""

    def __init__(self, recorder: E12Recorder, host: str = "127.0.0.1", port: int = 0) -> None:
        self.recorder = recorder
        sock = recorder.profile.socket
        self.length_bytes, self.byteorder = int(sock.get("length_bytes", 4)), str(sock.get("byteorder", "big"))
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        self.server = socketserver.ThreadingTCPServer((host, port), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.allow_reuse_address = True
        self.server.server_bind()
        self.server.server_activate()
        self.address: tuple[str, int] = self.server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(target=self.server.serve_forever, name="e12-sim", daemon=True)

    def __enter__(self) -> E12Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            while True:
                header = self._exactly(conn, self.length_bytes)
                if header is None:
                    return
                payload = self._exactly(conn, int.from_bytes(header, self.byteorder))  # type: ignore[arg-type]
                if payload is None:
                    return
                try:
                    replies = self.recorder.handle(payload)
                except TransportTimeout:
                    continue  # hung: read on, answer nothing
                except DeviceGoneError:
                    return  # unplugged: the connection drops
                for reply in replies:
                    conn.sendall(len(reply).to_bytes(self.length_bytes, self.byteorder) + reply)  # type: ignore[arg-type]
                if replies:
                    self.recorder.after_reply(replies[-1])
                if self.recorder.mode != "control":
                    return
        except OSError as exc:
            log.debug("e12 simulator connection: %s", exc)
        finally:
            conn.close()

    @staticmethod
    def _exactly(conn: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
