"""Damage made the way a disk or a wire makes it, and always made.

Writing a constant over a byte of random data leaves it unchanged once in 256 runs: the test then
checks undamaged bytes and fails (or, worse, passes) by chance. XOR changes the byte whatever it was.
"""

from __future__ import annotations


def flipped(data: bytes | bytearray | memoryview, at: int = 0) -> bytes:
    """``data`` with one bit of the byte at ``at`` inverted: never equal to ``data``."""
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)
