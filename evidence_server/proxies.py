"""Who the client is: the peer, or the address a trusted proxy says it forwarded for.

``X-Forwarded-For`` is written by whoever sends the request. It is believed only when the peer is
one of ``Settings.trusted_proxies`` (nginx), and then read from the right: the first address not
itself a trusted proxy is the client (what nginx appended), never the left-most (what the client
wrote); its ``X-Forwarded-Proto`` gives the scheme. Everything downstream (login throttle,
anonymous limits, the audit log's ``client_addr``) reads ``request.client``, which this middleware
sets. uvicorn's own proxy handling stays off (``proxy_headers=False`` in serving.py), so
``FORWARDED_ALLOW_IPS`` changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def _trusted(host: str | None, trusted: Sequence[Network]) -> bool:
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in net for net in trusted)


def forwarded_client(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer`` unless it is a trusted proxy, then the right-most forwarded
    address that is not a trusted proxy (pure)."""
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed hop: believe nothing left of it
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


class TrustedProxies:
    """Sets the ASGI scope's client from X-Forwarded-For when (and only when) a trusted proxy sent it."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app, self.trusted = app, networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            if peer and _trusted(peer[0], self.trusted):
                headers = scope.get("headers", [])
                values = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
                host = forwarded_client(peer[0], values, self.trusted)
                proto = next((v.decode("latin-1").strip() for k, v in headers if k == b"x-forwarded-proto"), "")
                scope = {**scope, "client": (host, 0)}
                if proto in ("http", "https") and scope["type"] == "http":
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
