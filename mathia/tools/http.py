"""HTTP for connectors: one httpx client per event loop, timeouts always, failures as clear results.

:func:`get_json` turns every way an upstream API can fail into an :class:`UpstreamFailure`
carrying the :class:`ToolResult` to answer: a timeout, a refused key (naming the variable to
check), the upstream's own rate limit, a 5xx, a body that is not JSON. Messages are built from
the status alone: a response body or an exception's text may repeat the URL, and the URL may
hold the key (OpenWeather takes it as a query parameter), so neither is ever shown or logged.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import httpx
import structlog

from mathia.tools.registry import ToolResult

log = structlog.get_logger(__name__)

TIMEOUT = httpx.Timeout(6.0, connect=3.0)
USER_AGENT = "Mathia (self-hosted team chat)"

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def http_client() -> httpx.AsyncClient:
    """The running loop's client (connections are reused across calls)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}, follow_redirects=False)
        _clients[loop] = client
    return client


async def close_http_client() -> None:
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


class UpstreamFailure(Exception):
    """An upstream API call failed; ``result`` is what the tool answers."""

    def __init__(self, result: ToolResult) -> None:
        super().__init__(result.message)
        self.result = result


def not_configured(label: str, setting: str) -> ToolResult:
    """The answer when a connector's key is missing: the exact variable to set."""
    return ToolResult.error(
        f"{label} is not set up on this Mathia: an admin sets `{setting}` (in `.env` or the environment) "
        "and restarts Mathia.",
        code="not_configured",
        data={"setting": setting},
    )


async def get_json(
    url: str,
    *,
    label: str,
    key_setting: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    ok_statuses: tuple[int, ...] = (200,),
) -> tuple[int, Any]:
    """GET ``url`` and return (status, parsed JSON) for ``ok_statuses``; raise :class:`UpstreamFailure` else.

    Callers list in ``ok_statuses`` the error statuses whose body they read themselves
    (OpenWeather's 404 "city not found", for one).
    """
    try:
        response = await http_client().get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        log.info("connector_timeout", connector=label)
        raise UpstreamFailure(
            ToolResult.error(f"{label} did not answer in time; try again in a moment.", code="timeout")
        ) from None
    except httpx.HTTPError as exc:
        log.info("connector_unreachable", connector=label, error=type(exc).__name__)
        raise UpstreamFailure(ToolResult.error(f"Could not reach {label}; try again later.", code="upstream")) from None
    status = response.status_code
    if status not in ok_statuses:
        log.info("connector_http_error", connector=label, status=status)
        raise UpstreamFailure(status_result(label, status, key_setting, response.headers))
    try:
        return status, response.json()
    except ValueError:
        log.info("connector_bad_body", connector=label, status=status)
        raise UpstreamFailure(
            ToolResult.error(f"{label} sent an answer that could not be read.", code="upstream")
        ) from None


def status_result(label: str, status: int, key_setting: str, headers: httpx.Headers | None = None) -> ToolResult:
    if status in (401, 403):
        return ToolResult.error(
            f"{label} refused Mathia's key (HTTP {status}); an admin checks `{key_setting}`.",
            code="upstream_auth",
            data={"setting": key_setting, "status": status},
        )
    if status == 429:
        retry = headers.get("retry-after") if headers is not None else None
        wait = f" (it asks to wait {retry} s)" if retry and retry.isdigit() else ""
        return ToolResult.error(
            f"{label} is limiting Mathia's requests right now{wait}; try again later.",
            code="upstream_rate_limited",
            data={"status": status},
        )
    if status >= 500:
        return ToolResult.error(
            f"{label} is having trouble (HTTP {status}); try again later.", code="upstream", data={"status": status}
        )
    return ToolResult.error(f"{label} refused the request (HTTP {status}).", code="upstream", data={"status": status})
