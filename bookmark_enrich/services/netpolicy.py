"""Which addresses a bookmark may make us connect to, checked on every connection.

Bookmarks come from people and apps we do not control; fetched as they are, a
bookmark for ``http://127.0.0.1:6379/`` or ``http://169.254.169.254/`` would read
internal services into the output, the cache and the source. By default only
public addresses are allowed. The check is made on the address actually
connected to: names are resolved here, every answer is checked, and the socket
connects to a checked address, for every connection and so for every redirect
hop. A DNS answer that changes between check and connect cannot slip through.

Services the user configured (LLM, Cobalt, S3, databases, Redis) are not
bookmark URLs and never go through this policy.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import select
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

__all__ = [
    "AddressBlocked",
    "NameNotResolved",
    "NetworkPolicy",
    "Resolver",
    "classify",
    "parse_ip",
    "policy_transport",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` → the addresses it resolves to (tests pass a stub)."""

_NUMERIC_HOST = re.compile(r"[0-9][0-9a-fA-FxX.]*")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")

ALLOW_PRIVATE = "--allow-private-network (BOOKMARK_ENRICH_ALLOW_PRIVATE_NETWORK=true)"
ALLOW_HOST = "--allow-host {host} (BOOKMARK_ENRICH_ALLOW_HOSTS)"


class AddressBlocked(httpx.TransportError):
    """The address a bookmark URL leads to is refused by the network policy."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NameNotResolved(httpx.ConnectError):
    """A host name that does not resolve: the domain is gone (or mistyped)."""


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, whichever way it is written, or None for a name.

    IPv4 is read as the C library (and so every HTTP client) reads it: decimal
    ``2130706433``, hex ``0x7f000001``, octal ``0177.0.0.1`` and short ``127.1``
    all mean 127.0.0.1.
    """
    host = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, -compatible, NAT64 or 6to4 IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``loopback``, ``private``...), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            kind = classify(inner)
            return f"{kind} (as IPv6)" if kind else None
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Public addresses only, unless the user allowed more."""

    allow_private: bool = False
    """Allow loopback, private, CGNAT, unspecified, reserved (not link-local)."""
    networks: tuple[IPNetwork, ...] = ()
    """Allowed exactly, whatever kind (link-local needs this)."""
    hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names allowed exactly, whatever they resolve to."""

    @classmethod
    def from_settings(cls, allow_private: bool, allow_hosts: Iterable[str]) -> NetworkPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in allow_hosts:
            item = item.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                ip = parse_ip(item)
                if ip is not None:
                    networks.append(ipaddress.ip_network(ip))
                else:
                    hosts.add(item.lower().rstrip("."))
        return cls(allow_private, tuple(networks), frozenset(hosts))

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why connecting to ``ip`` (for ``host``) is refused, or None when allowed."""
        kind = classify(ip)
        if kind is None:
            return None
        if host.lower().rstrip(".") in self.hosts or any(ip in n for n in self.networks
                                                         if n.version == ip.version):
            return None
        if self.allow_private and kind != "link-local" and not kind.startswith("link-local"):
            return None
        how = ALLOW_HOST.format(host=ip if parse_ip(host) is not None else host)
        if not kind.startswith("link-local"):
            how = f"{ALLOW_PRIVATE} or {how}"
        shown = host if parse_ip(host) is None else str(ip)
        target = f"{shown} ({ip})" if shown != str(ip) else shown
        return f"{target} is a {kind} address; allow it with {how}"

    async def check(self, host: str, port: int, resolver: Resolver) -> list[str]:
        """The addresses to connect to for ``host``; raises AddressBlocked if any is refused.

        Every address a name resolves to is checked, not only the first: a
        name that answers with one public and one private address is refused.
        """
        literal = parse_ip(host)
        addresses = [str(literal)] if literal is not None else await resolver(host, port)
        if not addresses:
            raise NameNotResolved(f"{host}: no address")
        for address in addresses:
            problem = self.refusal(host, ipaddress.ip_address(address.split("%", 1)[0]))
            if problem is not None:
                raise AddressBlocked(problem)
        return addresses


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's resolver, without blocking the event loop."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NameNotResolved(f"cannot resolve {host}: {exc.strerror or exc}") from None
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's anyio stream with its socket looked up once.

    Before each request it queues, httpcore asks every idle connection whether its
    socket is readable (the server hung up), and anyio answers each question by building
    a table of all the socket's attributes, with a ``getpeername`` system call: about
    8 % of the main thread's CPU under cProfile in a fetch-heavy run (bench core b).
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int,
                   timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore's API
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes,
                    timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore's API
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's API
                        ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._socket
        if info == "is_readable":  # as httpcore answers it, without the attribute table
            sock = self._socket
            if sock is None or sock.fileno() < 0:
                return True
            if not hasattr(select, "poll"):  # Windows
                return self._inner.get_extra_info(info)
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            return bool(poll.poll(0))
        return self._inner.get_extra_info(info)


class _PolicyBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to a checked address (never to the name)."""

    def __init__(self, policy: NetworkPolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int,
                          timeout: float | None = None,  # noqa: ASYNC109 - httpcore's API
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        addresses = await self.policy.check(host, port, self.resolver)
        last: Exception | None = None
        for address in addresses:
            try:
                return _Stream(await self.inner.connect_tcp(address, port, timeout,
                                                            local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109 - httpcore
                                  socket_options: Iterable[Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise AddressBlocked("unix sockets are not bookmark addresses")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """httpx's default certificate check, built once per process: each build loads the CA
    bundle (about 30 ms), and the fetch stage has one transport per pool (issue 23)."""
    return httpx.create_ssl_context(trust_env=False)


def policy_transport(policy: NetworkPolicy, *, limits: httpx.Limits,
                     resolver: Resolver | None = None) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection obeys ``policy``.

    httpx has no public switch for the network backend, so the transport's
    connection pool is rebuilt with ours; everything else is httpx's own.
    """
    transport = httpx.AsyncHTTPTransport(verify=_verifying_context(), limits=limits,
                                         trust_env=False)
    pool = transport._pool
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=pool._ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_PolicyBackend(policy, resolver or system_resolver),
    )
    return transport
