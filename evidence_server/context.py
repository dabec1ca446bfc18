"""Everything one server process holds once: settings, database, storage, signing key, receiver, tasks.

Routes and pages take it as ``CtxDep``; background tasks receive it as their first argument.
Nothing else reads ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from prometheus_client.registry import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from custodia_wire import keys
from evidence_server import models  # noqa: F401  (every table mapped before the first session)
from evidence_server.background.dispatch import Dispatcher
from evidence_server.config import Settings
from evidence_server.db import make_engine, make_sessionmaker
from evidence_server.limits import Limits
from evidence_server.signing import load_or_create_key, load_or_create_sm2_key, load_sm2_key
from evidence_server.storage import ObjectStore, make_store
from evidence_server.uploads.receiver import Receiver


@dataclass
class ServerContext:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        s = self.settings
        return make_engine(s.database_url, s.db_pool_size, s.db_max_overflow)

    @cached_property
    def sessionmaker(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def store(self) -> ObjectStore:
        return make_store(self.settings)

    @cached_property
    def signing_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key, always there (push tokens are derived from it); it signs documents unless
        ``signing_alg`` names another algorithm: sign with ``signer``."""
        assert self.settings.signing_key_file is not None
        return load_or_create_key(self.settings.signing_key_file)

    @cached_property
    def signer(self) -> keys.Signer:
        """What signs receipts, checkpoints, packages and lists: the key of the configured algorithm."""
        if self.settings.signing_alg == keys.SM2:
            assert self.settings.sm2_key_file is not None
            return keys.SM2Signer(load_or_create_sm2_key(self.settings.sm2_key_file))
        return keys.Ed25519Signer(self.signing_key)

    @cached_property
    def public_key(self) -> keys.PublicKey:
        return self.signer.public

    @cached_property
    def public_key_b64(self) -> str:
        """The signer's public key on one line: Ed25519's raw 32 bytes, SM2's DER SubjectPublicKeyInfo."""
        return self.public_key.raw_b64()

    @cached_property
    def key_id(self) -> str:
        return self.public_key.key_id

    @cached_property
    def note_keys(self) -> list[keys.PublicKey]:
        """Every key this server's checkpoints may be signed with (Ed25519, and SM2 once it was configured):
        a log whose server switched algorithm still verifies end to end."""
        out = [keys.from_ed25519(self.signing_key.public_key())]
        assert self.settings.sm2_key_file is not None
        sm2_key = load_sm2_key(self.settings.sm2_key_file)
        if sm2_key is not None:
            out.append(keys.from_sm2(sm2_key))
        return out

    @cached_property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)

    @cached_property
    def receiver(self) -> Receiver:
        assert self.settings.staging_dir is not None
        return Receiver(self.settings.staging_dir, self.settings.block_map_block_bytes, self.settings.sm3_on_receipt)

    @cached_property
    def tasks(self) -> Dispatcher:
        """Sends background tasks (in-process or to Celery, as configured)."""
        return Dispatcher(self)

    @cached_property
    def metrics(self) -> CollectorRegistry:
        """The Prometheus collectors of this process (made on the first scrape)."""
        # imported here: the collectors read every feature's tables, and features import this module
        from evidence_server.observability.metrics import make_registry

        return make_registry(self, lambda: self.tasks.pending)

    def close(self) -> None:
        if "tasks" in self.__dict__:
            self.tasks.shutdown()
        if "engine" in self.__dict__:
            from evidence_server.audit.sequencer import drain  # the audit feature imports this module

            drain(self.engine)
            self.engine.dispose()


async def server_context(request: Request) -> ServerContext:
    """The app's context (``async``: no thread-pool hop for a lookup)."""
    return context_of(request)


CtxDep = Annotated[ServerContext, Depends(server_context)]


def context_of(request: Request) -> ServerContext:
    """The app's context, for helpers that are handed only the request (pages' renderers, cookies)."""
    ctx: ServerContext = request.app.state.ctx
    return ctx
