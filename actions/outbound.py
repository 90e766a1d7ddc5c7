"""Where the server may send requests that users chose the address of (push endpoints, webhook
URLs): the one check, so the two cannot drift apart. Without it, a user could make the server
call into its own network (server-side request forgery).

    await check_outbound_url(url, what="endpoint", max_chars=2048, allow_insecure=False)

An http(s) URL of at most `max_chars` characters, with a host and no user info, no spaces or
control characters (1001 otherwise); unless `allow_insecure` (development and tests), https only,
and every address the host is or resolves to public: no loopback, private, link-local, shared,
multicast or IPv4-mapped non-public address. The senders check again before each request, since
DNS may change after the URL was accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from contract.errors import InvalidParameterError


async def check_outbound_url(url: str, *, what: str, max_chars: int,
                             allow_insecure: bool) -> None:
    if len(url) > max_chars:
        raise InvalidParameterError(f"{what} is over {max_chars} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidParameterError(f"{what} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidParameterError(f"{what} must be an http(s) URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        raise InvalidParameterError(f"{what} must be an http(s) URL with a host")
    if allow_insecure:
        return
    if parts.scheme != "https":
        raise InvalidParameterError(f"{what} must be an https URL")
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port or 443, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise InvalidParameterError(f"{what}'s host {host} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise InvalidParameterError(f"{what} must be a public address, not {address}")
