"""Device-side fakes of the shipped recorder families, for tests and demos without hardware.

Each reproduces its family's control-mode -> disk-mode state machine, password handling, a missing
SD card, GBK info blocks (padded and truncated as the firmware stores them), and can be told to
stop answering (timeouts), to vanish after a number of commands, or never to come back as a disk.
"""

from device_drivers.usb.simulators.ambarella import AmbarellaRecorder
from device_drivers.usb.simulators.base import SimulatedRecorder
from device_drivers.usb.simulators.dv16 import Dv16BulkOnly, Dv16Recorder
from device_drivers.usb.simulators.e12 import E12Link, E12Recorder, E12Server

__all__ = [
    "AmbarellaRecorder",
    "Dv16BulkOnly",
    "Dv16Recorder",
    "E12Link",
    "E12Recorder",
    "E12Server",
    "SimulatedRecorder",
]
