"""Outbound HTTP that cannot reach inside: addresses are checked where the socket connects.

A webhook's host comes from a journey, and a journey may be written by anyone with a
`write` key, so the address a call goes to is checked against the network it would reach:
loopback, private, link-local, multicast, unspecified and reserved ranges and the cloud
metadata addresses are refused unless a setting allows them. The check runs inside the
HTTP client's connection step on the address it is about to connect to, so a name that
resolves to a public address for the check and to a private one for the call (DNS
rebinding) has nothing to exploit: there is one resolution, and the socket uses it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""`socket.getaddrinfo`'s shape: (host, port, family, type) -> [(family, type, proto,
canonname, sockaddr), ...]."""

# Cloud metadata services: AWS, GCP, Azure, OpenStack (169.254.169.254), AWS over IPv6,
# Alibaba, Oracle. `allow_private` does not open these; only an explicit allowed entry does.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The host resolves to an address outbound calls may not reach."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> str | None:
    """Why `address` is internal ("loopback", "cloud metadata", ...), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return address_kind(inner)
    if address in METADATA:
        return "cloud metadata"
    for kind, flag in (("unspecified", address.is_unspecified),
                       ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast),
                       ("reserved", address.is_reserved),
                       ("private", address.is_private)):
        if flag:
            return kind
    if not address.is_global:
        return "not publicly routable"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which internal addresses outbound calls may reach anyway.

    `allowed` entries are host names (`hooks.internal`), `host:port` pairs
    (`127.0.0.1:8025`) or IP networks (`10.20.0.0/16`); a match allows the call whatever
    the address. `allow_private` opens every internal range except cloud metadata.
    """

    allow_private: bool = False
    allowed: tuple[str, ...] = ()
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, default=(), repr=False)

    def __post_init__(self) -> None:
        networks = []
        for entry in self.allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                continue
        object.__setattr__(self, "_networks", tuple(networks))

    def _named(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        for entry in self.allowed:
            entry = entry.lower()
            if entry == host or entry in (f"{host}:{port}", f"[{host}]:{port}"):
                return True
        return False

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why a call to `host:port` at `address` is refused, or None when it may go."""
        if self._named(host, port) or self._named(str(address), port):
            return None
        if any(address in network for network in self._networks):
            return None
        kind = address_kind(address)
        if kind is None or (self.allow_private and kind != "cloud metadata"):
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        return (f"{host} resolves to {article} {kind} address ({address}); webhooks may only "
                "call public addresses unless TROPA_WEBHOOK_ALLOWED_HOSTS names the host "
                "(or TROPA_WEBHOOK_ALLOW_PRIVATE is set)")


def checked_addresses(policy: AddressPolicy, host: str, port: int,
                      resolve: Resolver = socket.getaddrinfo) -> list[str]:
    """The addresses `host` resolves to, all of them allowed; AddressRefused otherwise.

    Every address must pass: a name that answers with one public and one internal address
    is refused, since the client may connect to either.
    """
    bare = host.strip("[]")
    try:
        infos = resolve(bare, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # Unresolvable now: let the connection fail the ordinary (retryable) way.
        raise httpcore.ConnectError(f"cannot resolve {bare}: {exc}") from exc
    found: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        address = ipaddress.ip_address(text)
        problem = policy.refusal(bare, port, address)
        if problem is not None:
            raise AddressRefused(problem)
        if text not in found:
            found.append(text)
    if not found:
        raise httpcore.ConnectError(f"{bare} has no address")
    return found


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket layer, connecting only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, resolve: Resolver = socket.getaddrinfo) -> None:
        self.policy = policy
        self.resolve = resolve

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        """Resolve once, check every address, connect to the checked ones in turn."""
        last: Exception | None = None
        for address in checked_addresses(self.policy, host, port, self.resolve):
            try:
                return super().connect_tcp(address, port, timeout, local_address,
                                           socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go through `GuardedBackend`.

    TLS still verifies the certificate against the URL's host name: only the TCP
    connection uses the checked address.
    """

    def __init__(self, policy: AddressPolicy, *, resolve: Resolver = socket.getaddrinfo,
                 verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify)
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(
            verify=verify)
        # httpx offers no public hook for the socket layer; the pool is rebuilt with ours.
        self._pool = httpcore.ConnectionPool(ssl_context=context,
                                             network_backend=GuardedBackend(policy, resolve))


def guarded_client(policy: AddressPolicy, *, timeout: float,
                   resolve: Resolver = socket.getaddrinfo) -> httpx.Client:
    """An HTTP client for calls to addresses taken from journeys: checked, no redirects,
    no proxies from the environment (a proxy would connect on the client's behalf)."""
    return httpx.Client(transport=GuardedTransport(policy, resolve=resolve), timeout=timeout,
                        follow_redirects=False, trust_env=False)
