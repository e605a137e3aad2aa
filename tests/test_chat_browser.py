"""Two people chat in two rooms in real Chromium and switch between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.ws import session_cookie_sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".data" / "screenshots"


def _signed_in_page(browser: Any, base: str, cookie: str, **context_args: Any) -> Any:
    context = browser.new_context(**context_args)
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def test_two_people_chat_in_two_rooms_and_switch() -> None:
    workspace, (ada, bob) = make_team(2)
    general = make_room(ada, workspace, "general", members=[bob])
    random = make_room(ada, workspace, "random", members=[bob])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cookies = {user.pk: session_cookie_sync(user) for user in (ada, bob)}
    with running_server() as base, chromium() as browser:
        ada_page = _signed_in_page(browser, base, cookies[ada.pk])
        bob_page = _signed_in_page(browser, base, cookies[bob.pk])
        ada_page.goto(f"{base}/w/{workspace.slug}/#room-{general.pk}")
        bob_page.goto(f"{base}/w/{workspace.slug}/#room-{general.pk}")
        for page in (ada_page, bob_page):
            page.wait_for_selector("#room-title:has-text('general')")
            page.wait_for_selector(".room-start")  # history loaded

        # Ada writes in #general; Bob sees it live, rendered.
        ada_page.fill("#composer-input", "Hello **Bob**, welcome to general")
        ada_page.press("#composer-input", "Enter")
        bob_page.wait_for_selector(".message .body strong:has-text('Bob')")
        assert "welcome to general" in bob_page.inner_text("#messages")

        # Shift+Enter makes a new line instead of sending.
        ada_page.fill("#composer-input", "line one")
        ada_page.press("#composer-input", "Shift+Enter")
        ada_page.type("#composer-input", "line two")
        assert ada_page.input_value("#composer-input") == "line one\nline two"
        ada_page.press("#composer-input", "Enter")
        bob_page.wait_for_selector(".message .body:has-text('line two')")

        # Ada switches to #random and writes; Bob, still in #general, gets an unread badge.
        ada_page.click(f"a[data-room-id='{random.pk}']")
        ada_page.wait_for_selector("#room-title:has-text('random')")
        ada_page.fill("#composer-input", "Over in random now")
        ada_page.press("#composer-input", "Enter")
        badge = bob_page.wait_for_selector(f"a[data-room-id='{random.pk}'] .badge")
        assert badge.inner_text() == "1"

        # Bob switches; the message is there, the badge clears; he answers with a mention.
        bob_page.click(f"a[data-room-id='{random.pk}']")
        bob_page.wait_for_selector(".message .body:has-text('Over in random now')")
        bob_page.wait_for_selector(f"a[data-room-id='{random.pk}'] .badge", state="detached")
        bob_page.fill("#composer-input", "@Ada got it")
        bob_page.press("#composer-input", "Enter")
        ada_page.wait_for_selector(".message.mentions-me .mention:has-text('@Ada')")

        # Back in #general, the earlier conversation is still there, without a reload.
        bob_page.click(f"a[data-room-id='{general.pk}']")
        bob_page.wait_for_selector(".message .body:has-text('welcome to general')")
        assert bob_page.locator(".message").count() == 2

        # Bob replies to Ada's first message and reacts to it; Ada sees both live.
        first = bob_page.locator(".message").first
        first.hover()
        first.locator("[data-action='reply']").click()
        bob_page.wait_for_selector("#reply-preview:not([hidden])")
        bob_page.fill("#composer-input", "Thanks!")
        bob_page.press("#composer-input", "Enter")
        first.hover()
        first.locator("[data-action='react']").click()
        bob_page.click("dialog button:has-text('🎉')")
        ada_page.click(f"a[data-room-id='{general.pk}']")
        ada_page.wait_for_selector(".message .quote:has-text('Ada: Hello **Bob**')")
        ada_page.wait_for_selector(".reaction:has-text('🎉 1')")

        # The context panel lists the room's members.
        ada_page.click("#toggle-context")
        ada_page.wait_for_selector("#context-body .members li:has-text('Bob')")
        ada_page.click(f"#context-body .role-toggle[data-user-id='{bob.pk}']")
        ada_page.wait_for_selector("#context-body .members li:has-text('Bob · moderator')")
        ada_page.locator(".message", has_text="Thanks!").hover()
        ada_page.screenshot(path=str(SCREENSHOTS / "chat-desktop.png"))


def _alone_in_a_room() -> tuple[str, int, str]:
    """One person with one room: (room page path, room id, session cookie)."""
    workspace, (ada,) = make_team(1)
    room = make_room(ada, workspace, "general")
    return f"/w/{workspace.slug}/#room-{room.pk}", room.pk, session_cookie_sync(ada)


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".room-start")  # history loaded


def test_chat_works_at_375px_with_drawers() -> None:
    path, room_id, cookie = _alone_in_a_room()
    with running_server() as base, chromium() as browser:
        page = _signed_in_page(browser, base, cookie, viewport={"width": 375, "height": 740})
        _open(page, base + path)
        assert not page.is_visible(f"a[data-room-id='{room_id}']") or page.evaluate(
            "document.getElementById('sidebar').getBoundingClientRect().right <= 0"
        )
        page.click("#open-sidebar")
        page.wait_for_function("document.getElementById('sidebar').getBoundingClientRect().left >= 0")
        page.click(f"a[data-room-id='{room_id}']")
        page.fill("#composer-input", "small screen")
        page.press("#composer-input", "Enter")
        page.wait_for_selector(".message .body:has-text('small screen')")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"page scrolls sideways ({width}px)"
        page.screenshot(path=str(SCREENSHOTS / "chat-375.png"))


def test_sent_messages_do_not_stay_pending() -> None:
    """Whichever arrives first, the broadcast or the ack, the message ends up drawn as sent."""
    path, _, cookie = _alone_in_a_room()
    with running_server() as base, chromium() as browser:
        page = _signed_in_page(browser, base, cookie)
        _open(page, base + path)
        for i in range(5):
            page.fill("#composer-input", f"quick message {i}")
            page.press("#composer-input", "Enter")
        page.wait_for_selector(".message .body:has-text('quick message 4')")
        page.wait_for_function("document.querySelectorAll('.message.pending').length === 0")
