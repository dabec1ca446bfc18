"""The registry of background tasks, filled by each feature's ``tasks.py`` and found by ``discover()``.

Tasks take the server context and IDs or plain JSON, and are idempotent: a retry or a duplicate
delivery changes nothing. A periodic task names the setting that gives its interval, so the
schedule is never kept by hand.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evidence_server.config import Settings
    from evidence_server.context import ServerContext

TaskFn = Callable[..., Any]


@dataclass(frozen=True)
class Task:
    name: str
    fn: TaskFn
    #: for periodic tasks: the interval in seconds from the settings (non-positive: switched off)
    every: Callable[[Settings], float] | None = None

    def __call__(self, ctx: ServerContext, *args: Any) -> Any:
        return self.fn(ctx, *args)


REGISTRY: dict[str, Task] = {}


def task(name: str, *, every: Callable[[Settings], float] | None = None) -> Callable[[TaskFn], TaskFn]:
    """Register ``fn(ctx, *args)`` as the background task ``name`` (periodic when ``every`` is given)."""

    def register(fn: TaskFn) -> TaskFn:
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise RuntimeError(f"two tasks named {name!r}")
        REGISTRY[name] = Task(name, fn, every)
        return fn

    return register


FEATURES_PACKAGE = "evidence_server"


def discover() -> dict[str, Task]:
    """Import every ``evidence_server.<feature>.tasks`` module; return the filled registry."""
    root = importlib.import_module(FEATURES_PACKAGE)
    for info in pkgutil.iter_modules(root.__path__):
        if not info.ispkg:
            continue
        feature = f"{FEATURES_PACKAGE}.{info.name}"
        if importlib.util.find_spec(f"{feature}.tasks") is not None:
            importlib.import_module(f"{feature}.tasks")
    return REGISTRY


def periodic(settings: Settings) -> dict[str, float]:
    """Task name → interval in seconds, for the periodic tasks that are switched on."""
    out: dict[str, float] = {}
    for t in discover().values():
        if t.every is not None:
            every = float(t.every(settings))
            if every > 0:
                out[t.name] = every
    return out
