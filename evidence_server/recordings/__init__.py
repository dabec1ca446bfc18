"""Recordings (音像记录信息): one verified file from a device, stored once by its BLAKE3."""
