"""Finding the outside parts a test needs: skip with a reason on a user's machine, fail in CI.

``.ci/run`` sets ``CUSTODIA_REQUIRE_SERVICES=1``; then a missing service fails the test instead
of skipping it, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def services_required() -> bool:
    return os.environ.get("CUSTODIA_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip (or, under CUSTODIA_REQUIRE_SERVICES=1, fail) the current test for ``reason``."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            missing(f"{name} is not installed (apt-get install {name})")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_port(host: str, port: int, what: str) -> None:
    if not port_open(host, port):
        missing(f"{what} is not reachable at {host}:{port}")
