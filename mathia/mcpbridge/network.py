"""Where Mathia may connect as an MCP client: public addresses only, unless the operator allows more.

:class:`PinnedTransport` resolves the host once per request, checks that address and connects
to *that* address (keeping the Host header and the TLS server name), so a name that answers a
public address to the check and a private one to the connection (DNS rebinding) gains nothing.

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
import httpx2
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


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (the one resolver the transport uses; tests replace it)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def checked_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: resolved once, and public unless the operator allows more."""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await resolve(host, port)
        except OSError:
            addresses = []
        if not addresses:
            raise InvalidInput(f"The host {host} cannot be found.", code="mcp_unknown_host") from None
    if not settings.MCP_CLIENT_PRIVATE_NETWORKS:
        _check_addresses(host, addresses)
    return addresses[0]


class PinnedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport that connects to the address it checked, never to a second lookup's."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        host = url.host
        address = await checked_address(host, url.port or (443 if url.scheme == "https" else 80))
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host  # the certificate is checked for the name, not the address
        pinned = httpx2.Request(
            request.method,
            url.copy_with(host=address),
            headers=request.headers,  # keeps Host: the name
            stream=request.stream,
            extensions=extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()
