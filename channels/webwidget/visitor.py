"""Who is behind a widget socket: client address and browser/OS from the user agent."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from ua_parser import parse as parse_user_agent

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: web.Request, trusted_proxies: Sequence[Network]) -> str | None:
    """The visitor's address; X-Forwarded-For is believed only as far as it was written by trusted proxies."""
    peer = _address(request.remote)
    if peer is None or not _trusted(peer, trusted_proxies):
        return str(peer) if peer else request.remote
    hops = [h.strip() for header in request.headers.getall("X-Forwarded-For", []) for h in header.split(",")]
    # Walk from the nearest hop outwards; the first address we do not trust is the client.
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        if not _trusted(address, trusted_proxies):
            return str(address)
    return str(peer)


def describe_agent(user_agent: str) -> dict[str, Any]:
    """Browser, OS and device parsed from a User-Agent header (None where unknown)."""
    result = parse_user_agent(user_agent or "")
    browser = result.user_agent
    os = result.os
    return {
        "browser": " ".join(p for p in (browser.family, browser.major) if p) if browser else None,
        "os": " ".join(p for p in (os.family, os.major) if p) if os else None,
        "device": result.device.family if result.device else None,
        "user_agent": user_agent[:512] if user_agent else None,
    }


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text) if text else None
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)
