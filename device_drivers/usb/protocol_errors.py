"""What the vendor protocols raise: the standard result codes, plus transport, timeout, not supported."""

from __future__ import annotations

from enum import IntEnum

from device_drivers.errors import DeviceGoneError, DriverError, NotSupportedError

__all__ = [
    "DeviceGoneError",
    "NotSupportedError",
    "ProtocolError",
    "ResultCode",
    "ResultError",
    "TransportError",
    "TransportTimeout",
]


class ResultCode(IntEnum):
    """The result codes every vendor host library shares (RECORDER-PROTOCOLS.md)."""

    CONNECT_SUCCESS = 1
    CONNECT_FAILED = 2
    CHECK_PWD_SUCCESS = 3
    CHECK_PWD_FAILED = 4
    SET_SYSTEMTIME_SUCCESS = 5
    SET_SYSTEMTIME_FAILED = 6
    MSDC_SUCCESS = 7
    MSDC_FAILED = 8


class ResultError(DriverError):
    """The device answered, and the answer is one of the failure result codes."""

    def __init__(self, code: ResultCode, reason: str) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason


class TransportError(DriverError):
    """The bytes did not get through: USB or socket error, malformed frame, bad SCSI status."""


class TransportTimeout(TransportError):
    """The device did not answer in time."""


class ProtocolError(TransportError):
    """The device answered something this profile does not understand."""
