"""Who is behind a widget socket: client address and browser/OS from the user agent."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from ua_parser import parse as parse_user_agent

from gateway.inputs import printable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_USER_AGENT = 512
# One subscriber usually holds a whole /64, so per-address limits count IPv6 clients by their /64.
IPV6_PREFIX = 64


def client_ip(request: web.Request, trusted_proxies: Sequence[Network]) -> str | None:
    """The visitor's address; X-Forwarded-For is believed only as far as it was written by trusted proxies."""
    peer = _address(request.remote)
    if peer is None or not _trusted(peer, trusted_proxies):
        return str(peer) if peer else request.remote
    hops = [h.strip() for header in request.headers.getall("X-Forwarded-For", []) for h in header.split(",")]
    # Walk from the nearest hop outwards; the first address we do not trust is the client.
    client = peer
    for hop in reversed(hops):
        address = _address(_without_port(hop))
        if address is None:
            break
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return str(client)


def address_key(ip: str | None) -> str:
    """What per-address limits count by: the IPv4 address, or the /64 an IPv6 address is in."""
    address = _address(ip)
    if address is None:
        return ip or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def describe_agent(user_agent: str) -> dict[str, Any]:
    """Browser, OS and device parsed from a User-Agent header (None where unknown)."""
    # Header bytes that are not UTF-8 arrive as lone surrogates, which cannot be stored; long ones cost parsing.
    user_agent = printable(user_agent or "").replace("\x00", "")[:MAX_USER_AGENT]
    result = parse_user_agent(user_agent)
    browser = result.user_agent
    os = result.os
    return {
        "browser": " ".join(p for p in (browser.family, browser.major) if p) if browser else None,
        "os": " ".join(p for p in (os.family, os.major) if p) if os else None,
        "device": result.device.family if result.device else None,
        "user_agent": user_agent or None,
    }


def _without_port(hop: str) -> str:
    """'[2001:db8::1]:443' and '192.0.2.1:8080' (as some proxies write them) without the port."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _address(text: str | None) -> Address | None:
    try:
        address = ipaddress.ip_address(text) if text else None
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)
