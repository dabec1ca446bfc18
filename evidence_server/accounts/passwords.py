"""The password rule: long enough, varied enough, and not a common password.

Length alone lets ``password123`` and ``qwertyuiop`` through; the bundled list (``data/``, the
20,000 most common passwords) refuses what an attacker tries first. Pure: no database, no I/O
beyond reading the list once.
"""

from __future__ import annotations

import gzip
import string
from functools import cache
from importlib import resources

MIN_LENGTH = 10
MIN_DISTINCT = 4
#: Characters people put around a common word to pass a rule ("Password123!", "2024qwerty").
_DECORATION = string.digits + string.punctuation + " "


@cache
def common_passwords() -> frozenset[str]:
    data = resources.files("evidence_server.accounts").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines() if line.strip())


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used, or None when it may."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    lowered = password.lower()
    if len(set(lowered)) < MIN_DISTINCT:
        return f"password must have at least {MIN_DISTINCT} different characters"
    listed = common_passwords()
    if lowered in listed:
        return "password is one of the most commonly used passwords"
    core = lowered.strip(_DECORATION)
    if len(core) >= 4 and core in listed:
        return "password is a commonly used password with digits or symbols added"
    return None
