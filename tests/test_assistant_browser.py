"""@mathia in real Chromium: thinking, the answer flowing in for two people, Stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathia.rooms.models import Room, RoomKind
from mathia.testing.fake_llm import FakeLLMServer, Reply
from tests.browser import chromium
from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.test_chat_browser import _signed_in_page
from tests.ws import session_cookie_sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".data" / "screenshots"
STORY = " ".join(f"word{i}" for i in range(300))


def test_an_answer_streams_to_two_people_and_the_asker_stops_it() -> None:
    workspace, (ada, bob) = make_team(2)
    general = make_room(ada, workspace, "general", members=[bob])
    cookies = {user.pk: session_cookie_sync(user) for user in (ada, bob)}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    reply = Reply(text=STORY, tokens_per_second=30, initial_delay=0.8)
    with FakeLLMServer(default=reply) as llm:
        env = {"LLM_PROVIDERS": "anthropic", "ANTHROPIC_API_KEY": "browser-test", "ANTHROPIC_BASE_URL": llm.url}
        with running_server(env=env) as base, chromium() as browser:
            pages = [_signed_in_page(browser, base, cookies[user.pk]) for user in (ada, bob)]
            for page in pages:
                page.goto(f"{base}/w/{workspace.slug}/#room-{general.pk}")
                page.wait_for_selector(".room-start")
            ada_page, bob_page = pages
            ada_page.fill("#composer-input", "@mathia tell us a long story")
            ada_page.press("#composer-input", "Enter")

            # Both see "Mathia is thinking" until the first words, then the text growing.
            for page in pages:
                page.wait_for_selector(".message.assistant .thinking")
            for page in pages:
                page.wait_for_selector(".message.assistant.streaming .body:has-text('word5')")
            answer = ".message.assistant"
            assert ada_page.is_visible(f"{answer} .stop")  # Ada asked
            assert not bob_page.is_visible(f"{answer} .stop")  # Bob did not, and is no moderator
            ada_page.screenshot(path=str(SCREENSHOTS / "assistant-streaming.png"))

            ada_page.click(f"{answer} .stop")
            for page in pages:
                page.wait_for_selector(f"{answer}.stopped .body:has-text('Stopped by Ada')")
                assert page.inner_text(f"{answer} .status-badge") == "(stopped)"
                assert not page.is_visible(f"{answer} .stop")
            shown = ada_page.inner_text(f"{answer} .body")
            assert shown.startswith("word0 word1")
            assert "word299" not in shown
            ada_page.screenshot(path=str(SCREENSHOTS / "assistant-stopped.png"))


def test_the_offline_assistant_answers_in_the_private_room() -> None:
    _, (ada,) = make_team(1)
    room = Room.objects.filter(memberships__user=ada, kind=RoomKind.DIRECT).first()
    assert room is not None
    cookie = session_cookie_sync(ada)
    path = f"/w/{room.workspace.slug}/#room-{room.pk}"
    with running_server() as base, chromium() as browser:
        page = _signed_in_page(browser, base, cookie)
        page.goto(base + path)
        page.wait_for_selector(".room-start")
        page.fill("#composer-input", "help")
        page.press("#composer-input", "Enter")
        page.wait_for_selector(".message.assistant .body strong:has-text('Mathia')")  # rendered Markdown
        assert "ANTHROPIC_API_KEY" in page.inner_text(".message.assistant .body")


def test_someone_who_opens_the_room_mid_answer_sees_the_text_so_far_then_the_rest() -> None:
    workspace, (ada, bob) = make_team(2)
    general = make_room(ada, workspace, "general", members=[bob])
    cookies = {user.pk: session_cookie_sync(user) for user in (ada, bob)}
    text = " ".join(f"word{i}" for i in range(60))
    # 6 s of answer: Bob's page must open while it streams, even on a busy machine.
    with FakeLLMServer(default=Reply(text=text, tokens_per_second=10)) as llm:
        env = {"LLM_PROVIDERS": "anthropic", "ANTHROPIC_API_KEY": "browser-test", "ANTHROPIC_BASE_URL": llm.url}
        with running_server(env=env) as base, chromium() as browser:
            url = f"{base}/w/{workspace.slug}/#room-{general.pk}"
            ada_page = _signed_in_page(browser, base, cookies[ada.pk])
            ada_page.goto(url)
            ada_page.wait_for_selector(".room-start")
            ada_page.fill("#composer-input", "@mathia count to sixty")
            ada_page.press("#composer-input", "Enter")
            ada_page.wait_for_selector(".message.assistant.streaming .body:has-text('word10')")
            # Bob opens the room now: the history page brings the text so far.
            bob_page = _signed_in_page(browser, base, cookies[bob.pk])
            bob_page.goto(url)
            bob_page.wait_for_selector(".message.assistant.streaming .body:has-text('word5')")
            bob_page.wait_for_selector(".message.assistant.streaming .body:has-text('word40')")  # then the rest
            bob_page.wait_for_selector(".message.assistant:not(.streaming) .body:has-text('word59')")
            assert bob_page.inner_text(".message.assistant .body") == text
