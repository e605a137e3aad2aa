"""In Chromium: an admin turns MCP on, a member makes a token, an MCP client uses it, the member revokes it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

import pytest

from mathia.embedded.redis import free_port
from tests.browser import chromium
from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.test_mcp_server import mcp_client, refusal
from tests.ws import session_cookie_sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".data" / "screenshots"


def _page(browser: Any, base: str, cookie: str) -> Any:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


async def _use(base: str, token: str) -> list[str]:
    async with mcp_client(base, token) as client:
        listing = await client.list_tools()
        rooms = await client.call_tool("rooms_list", {})
        assert rooms.is_error is False
        return [tool.name for tool in listing.tools]


def _run(coroutine: Any) -> Any:
    """Run an MCP client coroutine in its own thread (Playwright's sync API holds this one's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def test_turn_on_make_a_token_use_it_revoke_it() -> None:
    workspace, (ada, bob) = make_team(2)
    make_room(ada, workspace, "general", members=[bob])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cookies = {user.pk: session_cookie_sync(user) for user in (ada, bob)}  # before Playwright's loop runs
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    # The server may reach MCP servers on this machine (production refuses private addresses).
    with running_server(env={"MCP_CLIENT_PRIVATE_NETWORKS": "true"}) as base, chromium() as browser:
        admin = _page(browser, base, cookies[ada.pk])
        admin.goto(f"{base}/settings/mcp/{workspace.slug}")
        admin.wait_for_selector("[data-server-enabled='off']")
        admin.click("button:has-text('Turn on')")
        admin.wait_for_selector("[data-server-enabled='on']")
        # An external server that is down is added, and reported as down, not as an error page.
        admin.fill("#id_name", "weather")
        admin.fill("#id_url", dead)
        admin.click("button:has-text('Add and check')")
        admin.wait_for_selector("[data-server='weather'] [data-state]:has-text('Down')")
        assert "connection refused" in admin.inner_text("[data-server='weather'] [data-last-error]")
        admin.screenshot(path=str(SCREENSHOTS / "mcp-servers.png"), full_page=True)

        member = _page(browser, base, cookies[bob.pk])
        member.goto(f"{base}/settings/tokens")
        member.fill("#id_name", "Claude Desktop")
        member.select_option("#id_workspace", workspace.slug)
        member.click("button:has-text('Create token')")
        token = member.input_value("[data-new-token]")
        assert token.startswith("mathia_pat_")
        member.screenshot(path=str(SCREENSHOTS / "mcp-token-created.png"), full_page=True)

        names = _run(_use(base, token))
        assert "rooms_list" in names
        member.reload()
        assert member.locator("[data-new-token]").count() == 0  # shown once
        assert "ago" in member.inner_text("[data-token-row] td:nth-child(5)")  # last used

        member.click("button:has-text('Revoke')")
        member.wait_for_selector("[data-token-row] [data-status]:has-text('revoked')")
        error = _run(refusal(base, token))
        assert error.data["code"] == "token_revoked"
