"""Tools in real Chromium: slash-command completion in the composer, a live tool status line, GIFs inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathia.testing.fake_llm import FakeLLMServer, FakeToolCall, Reply
from tests.browser import chromium
from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.test_chat_browser import _signed_in_page
from tests.ws import session_cookie_sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".data" / "screenshots"
GIF = "https://media1.giphy.com/media/abc123/giphy.gif"


def test_slash_commands_complete_in_the_composer_and_answer_in_the_room() -> None:
    workspace, (ada,) = make_team(1)
    general = make_room(ada, workspace, "general")
    cookie = session_cookie_sync(ada)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_server() as base, chromium() as browser:
        page = _signed_in_page(browser, base, cookie)
        page.goto(f"{base}/w/{workspace.slug}/#room-{general.pk}")
        page.wait_for_selector(".room-start")
        page.fill("#composer-input", "/")
        page.wait_for_selector("#command-menu:not([hidden])")
        listed = page.locator("#command-menu li .usage").all_inner_texts()
        assert [usage.split()[0] for usage in listed] == ["/fx", "/gif", "/help", "/remind", "/weather"]
        assert "/weather <place>" in listed
        page.screenshot(path=str(SCREENSHOTS / "slash-menu.png"))
        page.type("#composer-input", "we")
        assert page.locator("#command-menu li .usage").all_inner_texts() == ["/weather <place>"]
        page.press("#composer-input", "Tab")
        assert page.input_value("#composer-input") == "/weather "
        assert page.is_hidden("#command-menu")
        assert "/weather <place> · the weather now in a city" in page.inner_text("#composer-hint")
        # Arrows move through the menu; Enter on a partial name completes instead of sending.
        page.fill("#composer-input", "/")
        page.type("#composer-input", "f")
        page.press("#composer-input", "Enter")
        assert page.input_value("#composer-input") == "/fx "
        page.type("#composer-input", "100 usd")
        page.press("#composer-input", "Enter")
        answer = ".message.assistant"
        page.wait_for_selector(f"{answer} .body:has-text('Usage')")
        assert "/fx <amount> <from> <to>" in page.inner_text(f"{answer} .body")
        # /help lists every command.
        page.fill("#composer-input", "/help")
        page.press("#composer-input", "Enter")
        page.wait_for_selector(f"{answer} .body:has-text('/weather <place>')")
        page.screenshot(path=str(SCREENSHOTS / "slash-help.png"))


def test_a_model_tool_call_shows_a_live_status_line_then_the_answer_with_its_gif() -> None:
    workspace, (ada, bob) = make_team(2)
    general = make_room(ada, workspace, "general", members=[bob])
    cookies = {user.pk: session_cookie_sync(user) for user in (ada, bob)}
    with FakeLLMServer() as llm:
        llm.enqueue(
            Reply(text="", tool_calls=(FakeToolCall("weather", {"place": "Nairobi"}),)),
            Reply(text=f"No weather key here, but have a cat: [a cat]({GIF})", initial_delay=2.0),
        )
        env = {"LLM_PROVIDERS": "anthropic", "ANTHROPIC_API_KEY": "browser-test", "ANTHROPIC_BASE_URL": llm.url}
        with running_server(env=env) as base, chromium() as browser:
            pages = [_signed_in_page(browser, base, cookies[user.pk]) for user in (ada, bob)]
            for page in pages:
                page.goto(f"{base}/w/{workspace.slug}/#room-{general.pk}")
                page.wait_for_selector(".room-start")
            ada_page = pages[0]
            ada_page.fill("#composer-input", "@mathia should I take a jacket to Nairobi?")
            ada_page.press("#composer-input", "Enter")
            for page in pages:  # both see the status line while the model is thinking again
                page.wait_for_selector(".message.assistant .tool-status:has-text('Checking the weather in Nairobi…')")
            ada_page.screenshot(path=str(SCREENSHOTS / "tool-status.png"))
            for page in pages:
                page.wait_for_selector(".message.assistant:not(.streaming) img.gif")
                assert page.get_attribute(".message.assistant img.gif", "src") == GIF
                assert not page.is_visible(".message.assistant .tool-status")
            ada_page.screenshot(path=str(SCREENSHOTS / "tool-answer.png"))
