"""Several hosts on one machine: a network namespace per host, each with its own address on one bridge.

``HostNetwork`` makes a Linux bridge in the root namespace (which gets the first address, ``.1``)
and, per host, a namespace joined to the bridge by a veth pair. Hosts reach each other and the root
namespace at their addresses only; a host's loopback is its own. Taking a host's bridge port down
cuts it off silently (no RST, no ICMP: packets are dropped), as a pulled cable or a dead switch port
would; bringing it up again lets its TCP connections carry on. ``block`` cuts one host off from one
other host only, loudly (its connections fail at once with "No route to host").

Services that listen only on the root namespace's 127.0.0.1 (PostgreSQL, Redis here) are reached
through ``forward``: a small TCP relay listening on the bridge address. Run it as
``python -m tests.production.hosts forward 10.x.y.1:5432=127.0.0.1:5432 ...``.

Names are unique per run (``cu`` + 6 hex digits), so runs cannot collide; ``close`` deletes the
namespaces (and with them their veth pairs) and the bridge, and is safe to call twice.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def netns_unavailable() -> str | None:
    """Why this machine cannot make namespaces, or None when it can."""
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"cuprobe{uuid.uuid4().hex[:6]}"
    r = ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` fails here: {r.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    used = [
        ipaddress.ip_interface(word).network
        for line in ip("-4", "-o", "addr", "show").stdout.splitlines()
        for word in line.split()
        if "/" in word and word[0].isdigit()
    ]
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.x.y.0/24 on this machine")


@dataclass
class Host:
    name: str  # the role: api1, worker, ...
    netns: str
    address: str
    port: str  # the bridge-side end of its veth pair, in the root namespace

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside this host."""
        return ["ip", "netns", "exec", self.netns, *command]


@dataclass
class HostNetwork:
    tag: str = field(default_factory=lambda: "cu" + uuid.uuid4().hex[:6])
    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)
    hosts: dict[str, Host] = field(default_factory=dict)
    _bridge: str | None = None

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (PostgreSQL, Redis through ``forward``)."""
        return str(self.subnet.network_address + 1)

    def up(self) -> None:
        bridge = f"{self.tag}br"
        ip("link", "add", bridge, "type", "bridge")
        self._bridge = bridge
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", bridge)
        ip("link", "set", bridge, "up")

    def add(self, name: str) -> Host:
        assert self._bridge is not None, "up() first"
        n = len(self.hosts) + 1
        netns, port, inner = f"{self.tag}-{name}", f"{self.tag}p{n}", f"{self.tag}i{n}"
        address = str(self.subnet.network_address + 10 + n)
        ip("netns", "add", netns)
        host = Host(name, netns, address, port)
        self.hosts[name] = host  # from here on, close() removes it
        ip("link", "add", port, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", netns)
        ip("-n", netns, "link", "set", inner, "name", "eth0")
        ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("link", "set", port, "master", self._bridge, "up")
        return host

    def cut(self, name: str) -> None:
        """Take the host off the network: its packets are dropped from now on, silently."""
        ip("link", "set", self.hosts[name].port, "down")

    def mend(self, name: str) -> None:
        ip("link", "set", self.hosts[name].port, "up")

    def block(self, name: str, other: str) -> None:
        """``name`` can no longer reach ``other`` (a firewall between them): "No route to host" at once."""
        ip("-n", self.hosts[name].netns, "route", "add", "unreachable", f"{self.hosts[other].address}/32")

    def unblock(self, name: str, other: str) -> None:
        ip("-n", self.hosts[name].netns, "route", "del", "unreachable", f"{self.hosts[other].address}/32")

    def shape(self, name: str, rate: str) -> None:
        """Limit what the host sends to ``rate`` (a slow station link)."""
        r = subprocess.run(
            [*self.hosts[name].argv("tc"), "qdisc", "add", "dev", "eth0", "root", "tbf"]
            + ["rate", rate, "burst", "64kb", "latency", "100ms"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            raise RuntimeError(f"tc on {name}: {r.stderr.strip()}")

    def close(self) -> None:
        for host in self.hosts.values():
            # the pair first: a namespace outlives `netns del` while a socket in it still retransmits
            # to a host that was cut off, and would keep its end of the pair until then
            ip("link", "del", host.port, check=False)
            ip("netns", "del", host.netns, check=False)
        self.hosts.clear()
        if self._bridge is not None:
            ip("link", "del", self._bridge, check=False)
            self._bridge = None


# --- a TCP relay from the bridge address to a service on the root namespace's loopback ----------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay(listen: str, target: str) -> asyncio.Server:
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(thost, int(tport))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(one, lhost, int(lport), reuse_address=True)


async def _forward(pairs: list[str]) -> None:
    servers = [await _relay(*pair.split("=", 1)) for pair in pairs]
    print("forwarding", *pairs, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if sys.argv[1:2] == ["forward"]:
        asyncio.run(_forward(sys.argv[2:]))
    else:
        sys.exit("usage: python -m tests.production.hosts forward LISTEN_HOST:PORT=TARGET_HOST:PORT ...")
