"""The retention tests use the cases site (two units, their people, one station, recordings with real
fingerprints in the object store): see tests/cases/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cases.conftest import SharedApp, World, shared_app, world_any_db  # noqa: F401  (fixtures)


@pytest.fixture
def world(shared_app: SharedApp) -> Iterator[World]:  # noqa: F811
    """A fresh site for each test; background tasks (compliance rescans after a commit) finish before the
    next test replaces the database under them."""
    w = shared_app.fresh_world()
    yield w
    shared_app.app.state.ctx.tasks.drain()
