"""Where Mathia may connect as an MCP client: public addresses only, unless the operator allows more.

Any workspace admin registers servers (everyone owns their default workspace), so without this
check they could make Mathia's server send requests into the operator's own network (cloud
metadata endpoints, internal admin pages) and read the answers' status codes. The host is
resolved and every address must be public, at registration and again before each connection;
``MCP_CLIENT_PRIVATE_NETWORKS`` lifts the rule for deployments whose MCP servers live beside
Mathia.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import anyio
from django.conf import settings

from mathia.core.errors import InvalidInput


class PrivateAddress(InvalidInput):
    code = "mcp_private_address"


def _check_addresses(host: str, addresses: list[str]) -> None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not address.is_global:
            raise PrivateAddress(
                f"{host} is on a private, loopback or link-local address ({address}); Mathia connects only to "
                "public MCP servers unless the operator sets MCP_CLIENT_PRIVATE_NETWORKS=true.",
                field="url",
            )


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_public_url(url: str) -> None:
    """Sync: for registration. Raises :class:`PrivateAddress`, or ``mcp_unknown_host``."""
    if settings.MCP_CLIENT_PRIVATE_NETWORKS:
        return
    host, port = _host_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidInput(f"The host {host} cannot be found.", code="mcp_unknown_host", field="url") from None
    _check_addresses(host, [str(info[4][0]) for info in infos])


async def check_public_url_async(url: str) -> None:
    """Async: before each connection (the name may resolve elsewhere by now)."""
    if settings.MCP_CLIENT_PRIVATE_NETWORKS:
        return
    host, port = _host_port(url)
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidInput(f"The host {host} cannot be found.", code="mcp_unknown_host") from None
    _check_addresses(host, [str(info[4][0]) for info in infos])
