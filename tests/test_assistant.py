"""@mathia end to end over the WebSocket: triggers, streaming, exactly-once, Stop, errors, limits.

The providers are the real SDKs talking HTTP to local fake servers that speak each API's
streaming format (``mathia.testing.fake_llm``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from mathia.accounts.models import User
from mathia.assistant.identity import assistant_user, mentions_assistant
from mathia.assistant.models import AssistantRun, RunState, UsageRecord
from mathia.chat.models import Message
from mathia.core.redis import get_redis
from mathia.realtime.events import pubsub_channel, room_group
from mathia.rooms.models import Room, RoomKind, RoomMembership
from mathia.testing.fake_llm import FakeLLMServer, Reply
from tests.chat_helpers import make_chat_team
from tests.helpers import make_user
from tests.ws import Socket, connect

pytestmark = [pytest.mark.django_db(transaction=True)]

SECRET_KEY = "sk-ant-test-DO-NOT-LEAK-7f3a9c"


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def llm(fake_llm: FakeLLMServer, settings: Any) -> FakeLLMServer:
    """Anthropic, through the real SDK, at the fake server; no fallback to the built-in assistant."""
    fake_llm.reset()
    settings.LLM_PROVIDERS = ["anthropic"]
    settings.ANTHROPIC_API_KEY = SECRET_KEY
    settings.ANTHROPIC_BASE_URL = fake_llm.anthropic_url
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.LLM_MAX_RETRIES = 1
    settings.LLM_FIRST_TOKEN_TIMEOUT = 2.0
    settings.LLM_IDLE_TIMEOUT = 2.0
    settings.LLM_PRICES = {"claude-test": (3.0, 15.0)}
    return fake_llm


@pytest.fixture
def team() -> dict[str, Any]:
    return make_chat_team()


async def subscribed(user: Any, room: Room) -> Socket:
    socket = await connect(user)
    reply = await socket.request({"type": "subscribe", "rooms": [room.pk]})
    assert reply["type"] == "subscribed", reply
    return socket


async def ask(socket: Socket, room: Room, body: str, client_id: str = "q1") -> dict[str, Any]:
    ack = await socket.request({"type": "send", "room_id": room.pk, "client_id": client_id, "body": body}, "ack")
    assert ack["type"] == "ack", ack
    return ack["message"]


async def answer_frames(socket: Socket, room: Room, timeout: float = 8) -> tuple[dict[str, Any], list[dict], dict]:
    """The answer's message.new, its message.stream frames, and its final message.updated."""
    start = await socket.recv_until("message.new", timeout=timeout, room_id=room.pk)
    while not start["message"]["author"]["assistant"]:
        start = await socket.recv_until("message.new", timeout=timeout, room_id=room.pk)
    answer_id = start["message"]["id"]
    chunks = []
    while True:
        frame = await socket.recv(timeout=timeout)
        if frame["type"] == "message.stream" and frame["message_id"] == answer_id:
            chunks.append(frame)
        elif frame["type"] == "message.updated" and frame["message"]["id"] == answer_id:
            return start, chunks, frame


def _answers(room: Room) -> list[Message]:
    return list(Message.objects.filter(room=room, author__is_assistant=True).order_by("seq"))


answers = database_sync_to_async(_answers)


# --- triggers -------------------------------------------------------------------------------
def test_mention_detection() -> None:
    assert mentions_assistant("@mathia what's up")
    assert mentions_assistant("thoughts, @Mathia?")
    assert mentions_assistant("(cc @mathia)")
    assert not mentions_assistant("mail bob@mathia.dev")
    assert not mentions_assistant("@mathiasson hello")
    assert not mentions_assistant("mathia, hello")


def test_every_new_person_gets_a_private_room_with_mathia() -> None:
    ada = make_user(display_name="Ada")
    mathia = assistant_user()
    room = Room.objects.get(memberships__user=ada, kind=RoomKind.DIRECT)
    assert set(RoomMembership.objects.filter(room=room).values_list("user_id", flat=True)) == {ada.pk, mathia.pk}
    assert not mathia.has_usable_password()
    assert mathia.is_assistant
    assert make_user(display_name="Bob")
    assert User.objects.filter(is_assistant=True).count() == 1


async def test_offline_assistant_answers_help_for_everyone_in_the_room(team: dict[str, Any]) -> None:
    general = team["general"]
    ada, bob = await subscribed(team["ada"], general), await subscribed(team["bob"], general)
    await ask(ada, general, "@mathia help")
    for socket in (ada, bob):
        start, chunks, final = await answer_frames(socket, general)
        assert start["message"]["status"] == "streaming"
        assert start["message"]["body"] == ""
        assert start["message"]["author"]["name"] == "Mathia"
        assert chunks
        assert [c["chunk"] for c in chunks] == list(range(1, len(chunks) + 1))
        assert final["message"]["status"] == "done"
        assert "".join(c["delta"] for c in chunks) == final["message"]["body"]
        assert "Mathia" in final["message"]["body"]
        assert "ANTHROPIC_API_KEY" in final["message"]["body"]
    stored = await answers(general)
    assert len(stored) == 1
    run = await database_sync_to_async(AssistantRun.objects.get)()
    # "help" is a request the offline parser is sure of: the help tool answers, no model at all.
    assert (run.state, run.asker_id, run.provider) == (RunState.DONE, team["ada"].pk, "")
    # Mathia became a visible member of the room it answered in.
    members = await database_sync_to_async(
        lambda: set(general.memberships.values_list("user__display_name", flat=True))
    )()
    assert "Mathia" in members
    for socket in (ada, bob):
        await socket.close()


async def test_offline_assistant_says_plainly_that_no_model_is_configured(team: dict[str, Any]) -> None:
    ada_user = team["ada"]
    room = await database_sync_to_async(lambda: Room.objects.get(memberships__user=ada_user, kind=RoomKind.DIRECT))()
    socket = await subscribed(ada_user, room)
    await ask(socket, room, "What was our revenue in March?")  # no mention needed in the private room
    _, _, final = await answer_frames(socket, room)
    body = final["message"]["body"]
    assert "No language model is configured" in body
    assert "won't guess" in body
    assert "OPENAI_BASE_URL" in body
    await socket.close()


async def test_plain_messages_in_shared_rooms_do_not_wake_mathia(team: dict[str, Any]) -> None:
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    sent = await ask(socket, general, "lunch? (mail bob@mathia.dev)")
    await socket.recv_until("message.new", room_id=general.pk)
    await socket.nothing_more(timeout=0.5)
    assert sent["mentions"] == []
    assert await answers(general) == []
    await socket.close()


# --- a real provider through its SDK --------------------------------------------------------
async def test_anthropic_answer_streams_coalesced_and_is_stored_once_with_usage(
    team: dict[str, Any], llm: FakeLLMServer
) -> None:
    text = "Here is a longer answer, streamed token by token, so that frames must coalesce. " * 3
    llm.enqueue(Reply(text=text, tokens_per_second=400, input_tokens=321, output_tokens=45))
    general = team["general"]
    sockets = [await subscribed(team["ada"], general) for _ in range(3)] + [await subscribed(team["bob"], general)]
    await ask(sockets[0], general, "@mathia summarise the thread please")
    results = [await answer_frames(socket, general) for socket in sockets]
    tokens = len(Reply(text=text).text_tokens())
    for _, chunks, final in results:
        assert final["message"]["body"] == text.strip()
        assert "".join(c["delta"] for c in chunks) == text
        assert 1 < len(chunks) < tokens  # coalesced: never one frame per token
    stored = await answers(general)
    assert len(stored) == 1
    assert stored[0].body == text.strip()
    assert stored[0].status == ""
    usage = await database_sync_to_async(lambda: list(UsageRecord.objects.all()))()
    assert len(usage) == 1
    record = usage[0]
    assert (record.provider, record.model, record.input_tokens, record.output_tokens) == (
        "anthropic",
        "claude-test",
        321,
        45,
    )
    assert record.user_id == team["ada"].pk
    assert record.room_id == general.pk
    assert record.cost_micros == 321 * 3 + 45 * 15
    assert record.prompt_chars > 0
    assert record.first_token_ms is not None
    # The prompt: our system prompt, and the question with its author, as the last user turn.
    request = llm.requests_for("anthropic")[-1]
    assert request.body["model"] == "claude-test"
    assert request.body["stream"] is True
    assert "You are Mathia" in request.body["system"]
    assert request.body["messages"][-1] == {"role": "user", "content": "Ada: summarise the thread please"}
    for socket in sockets:
        await socket.close()


async def test_a_reaction_to_an_answer_being_written_is_in_its_final_message(
    team: dict[str, Any], llm: FakeLLMServer
) -> None:
    llm.enqueue(Reply(text=" ".join(f"w{i}" for i in range(30)), tokens_per_second=60))
    general = team["general"]
    socket = await subscribed(team["bob"], general)
    await ask(socket, general, "@mathia go")
    answer_id = (await _assistant_message_new(socket, general))["id"]
    await socket.recv_until("message.stream", message_id=answer_id)
    reacted = await socket.request({"type": "react", "message_id": answer_id, "emoji": "👍"}, "ack")
    assert reacted["message"]["reactions"][0]["emoji"] == "👍"
    final = await socket.recv_until("message.updated", timeout=8)
    while final["message"]["id"] != answer_id or final["message"]["status"] == "streaming":
        final = await socket.recv_until("message.updated", timeout=8)
    assert final["message"]["reactions"] == [{"emoji": "👍", "user_ids": [team["bob"].pk], "count": 1}]
    assert final["message"]["reply_to"]["author"] == "Bob"
    await socket.close()


async def test_frames_come_at_most_once_per_flush_interval(
    team: dict[str, Any], llm: FakeLLMServer, settings: Any
) -> None:
    settings.ASSISTANT_FLUSH_MS = 100
    text = " ".join(f"t{i}" for i in range(60))
    llm.enqueue(Reply(text=text, tokens_per_second=150))  # 0.4 s: about 4 ticks
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia go")
    _, chunks, final = await answer_frames(socket, general)
    assert "".join(c["delta"] for c in chunks) == text == final["message"]["body"]
    # The first token at once, then one frame per 100 ms tick (0.4 s: about 4), then the rest.
    assert 2 <= len(chunks) <= 7
    await socket.close()


@pytest.mark.parametrize("layer", ["core", "pubsub_without_direct_publish"])
async def test_answers_stream_through_any_channel_layer(
    team: dict[str, Any], llm: FakeLLMServer, settings: Any, layer: str
) -> None:
    """Chunks go out with the buffer's script on the pub/sub layer; any other layer gets group_send."""
    config = settings.CHANNEL_LAYERS["default"]
    if layer == "core":
        config = {**config, "BACKEND": "channels_redis.core.RedisChannelLayer"}
    else:  # the same layer on a URL spelled differently: this process must not publish for it
        config = {**config, "CONFIG": {**config["CONFIG"], "hosts": [{"address": settings.REDIS_URL}]}}
    settings.CHANNEL_LAYERS = {"default": config}
    assert pubsub_channel(room_group(1)) is None
    text = " ".join(f"part{i}" for i in range(30))
    llm.enqueue(Reply(text=text, tokens_per_second=200))
    general = team["general"]
    sockets = [await subscribed(team["ada"], general), await subscribed(team["bob"], general)]
    await ask(sockets[0], general, "@mathia go")
    for socket in sockets:
        _, chunks, final = await answer_frames(socket, general)
        assert [c["chunk"] for c in chunks] == list(range(1, len(chunks) + 1))
        assert "".join(c["delta"] for c in chunks) == text
        assert final["message"]["body"] == text
        await socket.close()


async def test_a_redis_that_forgot_the_buffer_script_loads_it_again(team: dict[str, Any], llm: FakeLLMServer) -> None:
    assert pubsub_channel(room_group(1)) is not None  # the default: chunks published by the script
    llm.enqueue(Reply(text=" ".join(f"w{i}" for i in range(20)), tokens_per_second=100))
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await database_sync_to_async(lambda: get_redis().script_flush())()  # as after a Redis restart
    await ask(socket, general, "@mathia go")
    _, chunks, final = await answer_frames(socket, general)
    assert chunks
    assert chunks[0]["chunk"] == 1
    assert "".join(c["delta"] for c in chunks) == final["message"]["body"]
    await socket.close()


async def test_openai_compatible_endpoint_answers(team: dict[str, Any], llm: FakeLLMServer, settings: Any) -> None:
    settings.LLM_PROVIDERS = ["openai"]
    settings.OPENAI_API_KEY = ""  # a local server (Ollama, vLLM...) needs only the base URL
    settings.OPENAI_BASE_URL = llm.openai_url
    settings.OPENAI_MODEL = "llama-test"
    llm.enqueue(Reply(text="Local models work too.", input_tokens=50, output_tokens=6), api="openai")
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia are you local?")
    _, _, final = await answer_frames(socket, general)
    assert final["message"]["body"] == "Local models work too."
    record = await database_sync_to_async(UsageRecord.objects.get)()
    assert (record.provider, record.model, record.input_tokens) == ("openai", "llama-test", 50)
    await socket.close()


async def test_a_member_who_joins_mid_answer_sees_the_text_so_far_then_the_rest(
    team: dict[str, Any], llm: FakeLLMServer
) -> None:
    text = " ".join(f"word{i}" for i in range(40))
    llm.enqueue(Reply(text=text, tokens_per_second=40))
    general = team["general"]
    ada = await subscribed(team["ada"], general)
    await ask(ada, general, "@mathia count slowly")
    start = await ada.recv_until("message.new", room_id=general.pk)
    while not start["message"]["author"]["assistant"]:
        start = await ada.recv_until("message.new", room_id=general.pk)
    answer_id = start["message"]["id"]
    await ada.recv_until("message.stream", message_id=answer_id)
    await ada.recv_until("message.stream", message_id=answer_id)
    # Bob arrives now: subscribe, then load history, as the client does.
    bob = await subscribed(team["bob"], general)
    page = await bob.request({"type": "history", "room_id": general.pk}, "history")
    loaded = next(m for m in page["messages"] if m["id"] == answer_id)
    assert loaded["status"] == "streaming"
    assert loaded["stream"]["chunk"] >= 2
    seen, chunk = loaded["stream"]["text"], loaded["stream"]["chunk"]
    assert seen
    assert text.startswith(seen)
    while True:
        frame = await bob.recv(timeout=8)
        if frame["type"] == "message.stream" and frame["message_id"] == answer_id and frame["chunk"] > chunk:
            assert frame["chunk"] == chunk + 1  # no gap
            seen, chunk = seen + frame["delta"], frame["chunk"]
        elif frame["type"] == "message.updated" and frame["message"]["id"] == answer_id:
            break
    assert seen == text
    assert frame["message"]["body"] == text
    await ada.close()
    await bob.close()


# --- Stop -----------------------------------------------------------------------------------
async def test_the_asker_stops_an_answer_the_upstream_is_cancelled_and_the_text_kept(
    team: dict[str, Any], llm: FakeLLMServer
) -> None:
    llm.enqueue(Reply(text=" ".join(f"t{i}" for i in range(200)), tokens_per_second=50))
    general = team["general"]
    bob, ada = await subscribed(team["bob"], general), await subscribed(team["ada"], general)
    await ask(bob, general, "@mathia write a very long essay")
    start = await bob.recv_until("message.new", room_id=general.pk)
    while not start["message"]["author"]["assistant"]:
        start = await bob.recv_until("message.new", room_id=general.pk)
    answer_id = start["message"]["id"]
    await bob.recv_until("message.stream", message_id=answer_id)
    stopped = await bob.request({"type": "stop", "message_id": answer_id}, "ack")
    assert stopped["type"] == "ack"
    final = await ada.recv_until("message.updated", timeout=5)
    while final["message"]["id"] != answer_id:
        final = await ada.recv_until("message.updated", timeout=5)
    message = final["message"]
    assert message["status"] == "stopped"
    assert message["body"].startswith("t0")
    assert message["body"].endswith("_Stopped by Bob._")
    assert len(message["body"]) < 200  # far from the 200 words asked of the provider
    upstream = llm.requests_for("anthropic")[-1]
    assert await llm.wait_for(lambda: upstream.disconnected, timeout=3), "the provider request was not cancelled"
    run = await database_sync_to_async(AssistantRun.objects.get)()
    assert run.state == RunState.STOPPED
    assert run.stopped_by_id == team["bob"].pk
    # The provider never sent its final count: the usage row says so, with the prompt it knew.
    usage = await database_sync_to_async(UsageRecord.objects.get)()
    assert usage.estimated
    assert usage.input_tokens == 12  # from Anthropic's message_start
    assert usage.output_tokens > 0
    assert usage.outcome == "stopped"
    assert len(await answers(general)) == 1
    # Stopping again changes nothing.
    again = await bob.request({"type": "stop", "message_id": answer_id}, "ack")
    assert again["message"]["status"] == "stopped"
    await ada.close()
    await bob.close()


async def test_only_the_asker_or_a_moderator_may_stop(team: dict[str, Any], llm: FakeLLMServer) -> None:
    llm.enqueue(Reply(text=" ".join(f"t{i}" for i in range(100)), tokens_per_second=50))
    general = team["general"]
    ada, bob = await subscribed(team["ada"], general), await subscribed(team["bob"], general)
    await ask(ada, general, "@mathia long story please")
    start = await bob.recv_until("message.new", room_id=general.pk)
    while not start["message"]["author"]["assistant"]:
        start = await bob.recv_until("message.new", room_id=general.pk)
    answer_id = start["message"]["id"]
    refused = await bob.request({"type": "stop", "message_id": answer_id})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    outsider = await connect(await database_sync_to_async(make_user)(display_name="Eve"))
    hidden = await outsider.request({"type": "stop", "message_id": answer_id})  # not in the workspace
    assert (hidden["type"], hidden["code"]) == ("error", "not_found")
    await outsider.close()
    # Ada asked (and owns the room): she may.
    assert (await ada.request({"type": "stop", "message_id": answer_id}, "ack"))["type"] == "ack"
    final = await bob.recv_until("message.updated", timeout=5)
    while final["message"]["id"] != answer_id:
        final = await bob.recv_until("message.updated", timeout=5)
    assert final["message"]["status"] == "stopped"
    await ada.close()
    await bob.close()


# --- errors ---------------------------------------------------------------------------------
async def _failed_answer(team: dict[str, Any], question: str = "@mathia hello there?") -> dict[str, Any]:
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, question, client_id=f"q{abs(hash(question))}")
    _, _, final = await answer_frames(socket, general)
    await socket.close()
    return final["message"]


async def test_a_rejected_key_gives_a_clear_message_that_never_shows_the_key(
    team: dict[str, Any], llm: FakeLLMServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    llm.enqueue(Reply(status=401))
    message = await _failed_answer(team)
    assert message["status"] == "failed"
    assert "ANTHROPIC_API_KEY" in message["body"]
    run = await database_sync_to_async(AssistantRun.objects.get)()
    assert (run.state, run.error_code) == (RunState.FAILED, "auth")
    captured = capsys.readouterr()
    for place in (message["body"], message["html"], caplog.text, captured.out, captured.err):
        assert SECRET_KEY not in place
    assert len(llm.requests_for("anthropic")) == 1  # a 401 is not retried


async def test_429_and_5xx_before_the_first_token_are_retried(team: dict[str, Any], llm: FakeLLMServer) -> None:
    llm.enqueue(Reply(status=429, retry_after=0.05), Reply(text="Second time lucky."))
    message = await _failed_answer(team)
    assert (message["status"], message["body"]) == ("done", "Second time lucky.")
    llm.reset()
    llm.enqueue(Reply(status=500), Reply(status=529), Reply(status=500))
    message = await _failed_answer(team, "@mathia again?")
    assert message["status"] == "failed"
    assert "couldn't answer" in message["body"]
    assert len(llm.requests_for("anthropic")) == 2  # the first try and LLM_MAX_RETRIES=1


async def test_a_stream_cut_midway_keeps_the_partial_text_and_says_so(team: dict[str, Any], llm: FakeLLMServer) -> None:
    llm.enqueue(Reply(text="one two three four five six", cut_after=3))
    message = await _failed_answer(team)
    assert message["status"] == "failed"
    assert message["body"].startswith("one two three")
    assert "cut off" in message["body"]
    assert len(llm.requests_for("anthropic")) == 1  # never retried after the first token


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(malformed_after=1), "cut off"),
        (Reply(error_event_after=2), "cut off"),
        (Reply(hang=True), "couldn't answer"),
        (Reply(text="a b c d", stall_after=2), "cut off"),
    ],
    ids=["malformed-event", "error-event", "no-first-token", "stalled-midway"],
)
async def test_bad_streams_and_timeouts_end_with_a_clear_message(
    team: dict[str, Any], llm: FakeLLMServer, settings: Any, reply: Reply, words: str
) -> None:
    settings.LLM_FIRST_TOKEN_TIMEOUT = 0.5
    settings.LLM_IDLE_TIMEOUT = 0.5
    settings.LLM_MAX_RETRIES = 0
    llm.enqueue(reply)
    message = await _failed_answer(team)
    assert message["status"] == "failed"
    assert words in message["body"], message["body"]
    run = await database_sync_to_async(AssistantRun.objects.get)()
    assert run.state == RunState.FAILED
    assert run.finished_at is not None


async def test_when_every_model_fails_the_builtin_assistant_explains(
    team: dict[str, Any], llm: FakeLLMServer, settings: Any
) -> None:
    settings.LLM_PROVIDERS = ["anthropic", "builtin"]
    llm.enqueue(Reply(status=401))
    message = await _failed_answer(team)
    assert message["status"] == "done"
    assert "can't answer that right now" in message["body"]
    assert "ANTHROPIC_API_KEY" in message["body"]


# --- limits ---------------------------------------------------------------------------------
async def test_a_person_over_their_concurrency_limit_is_told_to_try_again(
    team: dict[str, Any], llm: FakeLLMServer, settings: Any
) -> None:
    settings.ASSISTANT_MAX_PER_USER = 1
    llm.enqueue(Reply(text=" ".join(["slow"] * 30), tokens_per_second=30))
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia first question", client_id="q1")
    await socket.recv_until("message.stream", timeout=5)
    await ask(socket, general, "@mathia second question", client_id="q2")
    busy = None
    while busy is None:
        frame = await socket.recv_until("message.new", timeout=5, room_id=general.pk)
        if frame["message"]["author"]["assistant"] and frame["message"]["status"] == "failed":
            busy = frame["message"]
    assert "try again" in busy["body"]
    assert "You already have an answer on the way" in busy["body"]
    assert await database_sync_to_async(AssistantRun.objects.count)() == 1
    await socket.close()


async def _assistant_message_new(socket: Socket, room: Room) -> dict[str, Any]:
    start = await socket.recv_until("message.new", timeout=5, room_id=room.pk)
    while not start["message"]["author"]["assistant"]:
        start = await socket.recv_until("message.new", timeout=5, room_id=room.pk)
    return start["message"]


async def _final(socket: Socket, answer_id: int, type_: str = "message.updated") -> dict[str, Any]:
    frame = await socket.recv_until(type_, timeout=5)
    while frame["message"]["id"] != answer_id:
        frame = await socket.recv_until(type_, timeout=5)
    return frame["message"]


async def test_a_moderator_stops_someone_elses_answer(team: dict[str, Any], llm: FakeLLMServer) -> None:
    llm.enqueue(Reply(text=" ".join(f"t{i}" for i in range(100)), tokens_per_second=50))
    general = team["general"]
    ada, bob = await subscribed(team["ada"], general), await subscribed(team["bob"], general)
    await ask(bob, general, "@mathia long story please")  # Bob asks; Ada owns the room
    answer = await _assistant_message_new(ada, general)
    await ada.recv_until("message.stream", message_id=answer["id"])
    assert (await ada.request({"type": "stop", "message_id": answer["id"]}, "ack"))["type"] == "ack"
    final = await _final(bob, answer["id"])
    assert final["status"] == "stopped"
    assert final["body"].endswith("_Stopped by Ada._")
    await ada.close()
    await bob.close()


async def test_stop_while_thinking_ends_the_answer_before_any_text(team: dict[str, Any], llm: FakeLLMServer) -> None:
    llm.enqueue(Reply(text="never shown", initial_delay=1.5))
    general = team["general"]
    ada = await subscribed(team["ada"], general)
    await ask(ada, general, "@mathia think hard")
    answer = await _assistant_message_new(ada, general)
    await ada.request({"type": "stop", "message_id": answer["id"]}, "ack")
    final = await _final(ada, answer["id"])
    assert final["status"] == "stopped"
    assert final["body"] == "_Stopped by Ada._"
    run = await database_sync_to_async(AssistantRun.objects.get)()
    assert run.state == RunState.STOPPED
    await ada.close()


async def test_deleting_an_answer_mid_stream_stops_it_and_it_stays_deleted(
    team: dict[str, Any], llm: FakeLLMServer
) -> None:
    llm.enqueue(Reply(text=" ".join(f"t{i}" for i in range(100)), tokens_per_second=50))
    general = team["general"]
    ada, bob = await subscribed(team["ada"], general), await subscribed(team["bob"], general)
    await ask(bob, general, "@mathia say something rude")
    answer = await _assistant_message_new(ada, general)
    await ada.recv_until("message.stream", message_id=answer["id"])
    deleted = await ada.request({"type": "delete", "message_id": answer["id"]}, "ack")  # Ada moderates
    assert deleted["message"]["deleted"]
    assert deleted["message"]["status"] == "done"
    await _final(bob, answer["id"], "message.deleted")
    deadline = asyncio.get_running_loop().time() + 5
    while (await database_sync_to_async(AssistantRun.objects.get)()).state == RunState.RUNNING:
        assert asyncio.get_running_loop().time() < deadline, "the answer went on after its deletion"
        await asyncio.sleep(0.05)
    stored = await database_sync_to_async(Message.objects.get)(pk=answer["id"])
    assert stored.deleted_at is not None
    assert stored.body == ""
    page = await bob.request({"type": "history", "room_id": general.pk}, "history")
    loaded = next(m for m in page["messages"] if m["id"] == answer["id"])
    assert loaded["deleted"]
    assert "stream" not in loaded
    await ada.close()
    await bob.close()


async def test_multibyte_text_streams_and_is_stored_intact(team: dict[str, Any], llm: FakeLLMServer) -> None:
    text = "Ça marche: 日本語のテキスト, emoji 🎉🚀 and ünïcödé."
    llm.enqueue(Reply(text=text, tokens=tuple(text), tokens_per_second=200))  # one character per token
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia unicode?")
    _, chunks, final = await answer_frames(socket, general)
    assert "".join(c["delta"] for c in chunks) == text
    assert final["message"]["body"] == text
    await socket.close()
