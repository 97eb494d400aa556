"""Who is calling, by network address: the client IP behind trusted proxies, and the key limits count it by.

The address comes from the connection, rewritten from `X-Forwarded-For` only when the connection comes from a
proxy listed in FORWARDED_ALLOW_IPS: uvicorn's ProxyHeadersMiddleware, applied by the app itself
(`main.create_app`) with the same list `serve` passes to uvicorn, so the app trusts exactly the proxies the
server does, however it is served. Anyone else's `X-Forwarded-For` is ignored: a client cannot choose the
address it is counted by.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

# A carrier gives each IPv6 subscriber a whole /64 and a device may hop across it at will: limits and
# de-duplication count an IPv6 client by its /64.
IPV6_PREFIX = 64


def client_ip(connection: Any) -> str:
    """The caller's address (an HTTP request or a WebSocket), normalised; "" when there is none."""
    client = getattr(connection, "client", None) if connection is not None else None
    host = client.host if client is not None and client.host else ""
    return _normalised(host) if host else ""


@lru_cache(maxsize=4096)
def _normalised(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an IP (a unix socket, a test client): keep it as it is
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


@lru_cache(maxsize=4096)
def network_key(ip: str) -> str:
    """The key an address is counted by: an IPv4 address itself, an IPv6 address's /64 network."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
