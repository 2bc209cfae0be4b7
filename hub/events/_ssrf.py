"""SSRF guard for partner webhook targets.

A target URL must be ``http``/``https`` with a host and no credentials. Unless
``webhooks.allow_private_targets`` is set, every address the host resolves to must be
public: loopback, private (RFC 1918, ULA), link-local (cloud metadata at 169.254.169.254),
shared, multicast, reserved and unspecified addresses are refused. The check runs at
registration and again at delivery, inside the HTTP client's resolver, on the exact
addresses the connection will use, so a DNS answer that changes after registration
(DNS rebinding) cannot reach an internal service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from hub.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(OSError):
    """A delivery target resolved to an address that partner webhooks may not reach."""


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a webhook target, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_problem(ip.ipv4_mapped)
    for attr, why in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return why
    if not ip.is_global:
        return "not globally routable"
    return None


def parse_target(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a webhook URL; InputError when it is not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"webhook url {url!r} is not a valid URL: {exc}", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InputError(
            f"webhook url must use http or https, not {scheme or 'no scheme'!r}; give a URL like https://example.com/hooks",
            field="url",
        )
    if not parts.hostname:
        raise InputError(f"webhook url {url!r} has no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "webhook url must not contain credentials (user:password@); the signature authenticates", field="url"
        )
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def literal_ip(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal (``127.0.0.1``, ``::1``), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse (InputError) a URL that is not http(s) or whose host resolves to a non-public address."""
    _, host, port = parse_target(url)
    if allow_private:
        return
    ip = literal_ip(host)
    if ip is not None:
        addrs: list[IPAddress] = [ip]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise InputError(
                f"webhook url host {host!r} does not resolve ({exc}); check the name", field="url"
            ) from None
        addrs = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for addr in addrs:
        why = address_problem(addr)
        if why:
            raise InputError(
                f"webhook url host {host!r} resolves to {addr}, a {why} address; partner webhooks only go to "
                "public addresses (set [webhooks] allow_private_targets = true for a private network)",
                field="url",
            )


class PublicOnlyResolver(ThreadedResolver):
    """An aiohttp resolver that refuses a host when any of its addresses is not public."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for r in results:
            addr = ipaddress.ip_address(str(r["host"]).split("%", 1)[0])
            why = address_problem(addr)
            if why:
                raise BlockedTarget(f"refused: {host} resolves to {addr}, a {why} address")
        return results


def blocked_literal(host: str) -> str | None:
    """Why an IP-literal host is refused (aiohttp does not resolve literals), or None."""
    ip = literal_ip(host)
    if ip is None:
        return None
    why = address_problem(ip)
    return f"refused: {ip} is a {why} address" if why else None


__all__: list[str] = [
    "BlockedTarget",
    "PublicOnlyResolver",
    "address_problem",
    "blocked_literal",
    "check_target",
    "parse_target",
]
