"""Frames over a TCP socket: a length prefix then the payload, or newline-terminated JSON."""

from __future__ import annotations

import contextlib
import socket

from device_drivers.usb.protocol_errors import DeviceGoneError, ProtocolError, TransportError, TransportTimeout


def encode_frame(
    payload: bytes,
    *,
    length_bytes: int = 4,
    byteorder: str = "big",
    max_payload: int = 1024,
    framing: str = "length_prefixed",
) -> bytes:
    if framing == "json_lines":
        if b"\n" in payload:
            raise ProtocolError("a JSON-lines message cannot hold a newline")
        return payload + b"\n"
    if len(payload) > max_payload:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {max_payload}-byte limit")
    return len(payload).to_bytes(length_bytes, byteorder) + payload  # type: ignore[arg-type]


class SocketFrames:
    """:class:`~device_drivers.usb.transport.FrameTransport` over TCP (Android-based recorders)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 3.0,
        framing: str = "length_prefixed",
        length_bytes: int = 4,
        byteorder: str = "big",
        max_payload: int = 1024,
    ) -> None:
        self.framing, self.length_bytes, self.byteorder, self.max_payload = (
            framing,
            length_bytes,
            byteorder,
            max_payload,
        )
        self._buffer = b""
        try:
            self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        except TimeoutError as exc:
            raise TransportTimeout(f"no answer from {host}:{port}") from exc
        except OSError as exc:
            raise DeviceGoneError(f"cannot reach the recorder at {host}:{port}: {exc.strerror or exc}") from exc

    def send(self, frame: bytes, timeout: float) -> None:
        data = encode_frame(
            frame,
            length_bytes=self.length_bytes,
            byteorder=self.byteorder,
            max_payload=self.max_payload,
            framing=self.framing,
        )
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise TransportTimeout("send timed out") from exc
        except OSError as exc:
            raise DeviceGoneError(f"the recorder closed the connection: {exc}") from exc

    def receive(self, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        if self.framing == "json_lines":
            while b"\n" not in self._buffer:
                self._buffer += self._recv_some()
            line, self._buffer = self._buffer.split(b"\n", 1)
            return line
        length = int.from_bytes(self._exactly(self.length_bytes), self.byteorder)  # type: ignore[arg-type]
        if length > self.max_payload:
            raise ProtocolError(f"frame of {length} bytes announced; at most {self.max_payload} allowed")
        return self._exactly(length)

    def _exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += self._recv_some()
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _recv_some(self) -> bytes:
        try:
            chunk = self.sock.recv(4096)
        except TimeoutError as exc:
            raise TransportTimeout("the recorder did not answer in time") from exc
        except OSError as exc:
            raise TransportError(f"socket error: {exc}") from exc
        if not chunk:
            raise DeviceGoneError("the recorder closed the connection")
        return chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
