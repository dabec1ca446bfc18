"""Streaming a clip's body into its staging file: never held in memory, MD5 fed in the same pass."""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

import anyio
from starlette.requests import ClientDisconnect, Request

from evidence_server.context import ServerContext
from evidence_server.push.service import PushError
from evidence_server.uploads.receiver import Appender, Digests, StagingFull

BLOCK = 4 * 1024 * 1024


_md5_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="push-md5")


def _write(appender: Appender, md5: hashlib._Hash, block: bytes) -> None:
    """MD5 on its own thread while the block is written and fed to BLAKE3 and SHA-256 (all release the GIL)."""
    summing = _md5_pool.submit(md5.update, block)
    try:
        appender.write(block)
    finally:
        summing.result()


async def stream_clip(ctx: ServerContext, upload_id: str, request: Request, limit: int) -> tuple[Digests, str]:
    """Receive the whole body into the upload's staging file; (digests, md5 hex).

    A client gone before the end raises PushError 400 (the sender retries the whole object); a full
    staging area raises PushError 507 and keeps nothing of this object.
    """
    ctx.receiver.create(upload_id)
    appender = ctx.receiver.open_for_append(upload_id, 0)
    md5 = hashlib.md5(usedforsecurity=False)
    pending: asyncio.Future[None] | None = None
    loop = asyncio.get_running_loop()
    buf = bytearray()
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise PushError(413, "clip larger than this server takes")
            buf += chunk
            if len(buf) >= BLOCK:
                block, buf = bytes(buf), bytearray()
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, _write, appender, md5, block)
        if pending is not None:
            await pending
            pending = None
        if buf:
            await anyio.to_thread.run_sync(_write, appender, md5, bytes(buf))
    except ClientDisconnect as exc:
        raise PushError(400, "the client went away before the end of the object") from exc
    except StagingFull as exc:
        raise PushError(507, "server staging area is full; retry later") from exc
    finally:
        if pending is not None:
            await asyncio.wait([pending])
        await anyio.to_thread.run_sync(appender.close)
    return appender.hasher, md5.hexdigest()
