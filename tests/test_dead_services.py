"""A backing service that dies mid-use gives a clear answer and loses nothing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from mathia.chat.models import Message
from mathia.embedded.redis import start_embedded_redis
from tests.chat_helpers import make_chat_team
from tests.ws import connect


@pytest.fixture
def dead_redis(settings: Any, tmp_path: Path) -> str:
    """Point Mathia's own Redis use (rate limits, presence) at a Redis that has stopped."""
    server = start_embedded_redis(tmp_path / "redis")
    server.stop()
    settings.REDIS_URL = server.url
    return server.url


@pytest.mark.django_db(transaction=True)
async def test_send_while_redis_is_down_answers_unavailable_and_keeps_the_socket(dead_redis: str) -> None:
    team = await database_sync_to_async(make_chat_team)()
    socket = await connect(team["ada"])
    reply = await socket.request({"type": "send", "room_id": team["general"].pk, "client_id": "d1", "body": "hello?"})
    assert reply["type"] == "error"
    assert reply["code"] == "unavailable"
    assert "try again" in reply["message"]
    assert (await socket.request({"type": "ping"}, "pong"))["type"] == "pong"  # still open
    assert await database_sync_to_async(Message.objects.filter(client_id="d1").count)() == 0
    await socket.close()


@pytest.mark.django_db
def test_http_api_while_redis_is_down_answers_503_json(client: Client, dead_redis: str) -> None:
    team = make_chat_team()
    client.force_login(team["ada"])
    response = client.get(f"/api/w/{team['workspace'].slug}/people", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == "unavailable"


ANSWER = " ".join(f"w{i}" for i in range(30))


@pytest.mark.django_db(transaction=True)
async def test_redis_dying_mid_answer_still_ends_the_answer_with_its_whole_text(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Mathia's Redis (answer buffers, slots) stops while an answer streams; the channel layer
    and the database live on. The answer still ends, stored once with all its text."""
    own = start_embedded_redis(tmp_path / "redis")
    settings.REDIS_URL = own.url
    try:
        final, first = await _answer_while_redis_dies(settings, own)
    finally:
        own.stop()
    answer_id = first["message_id"]
    assert final["message"]["id"] == answer_id
    assert final["message"]["status"] == "done"
    assert final["message"]["body"].startswith(ANSWER)
    stored = await database_sync_to_async(Message.objects.get)(pk=answer_id)
    assert (stored.status or "done", stored.body) == (final["message"]["status"], final["message"]["body"])
    # Nothing crashed on the way: the slot that could not be freed is only a warning (its lease ends).
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    flush_warnings = [r for r in caplog.records if "assistant_flush_failed" in r.getMessage()]
    assert 1 <= len(flush_warnings) <= 2, len(flush_warnings)  # Redis being down, then this answer: not every tick
    logged = caplog.text
    assert "assistant_slot_release_failed" in logged
    assert "assistant_buffer_clear_failed" in logged


@contextlib.asynccontextmanager
async def _asking(
    settings: Any, reply: Any, client_id: str
) -> AsyncIterator[tuple[dict[str, Any], Any, dict[str, Any]]]:
    """Ada asks @mathia in #general, answered by a fake Anthropic server with ``reply``.

    Yields the team, Ada's socket and the answer's first ``message.stream`` frame.
    """
    from mathia.testing.fake_llm import FakeLLMServer

    with FakeLLMServer(default=reply) as llm:
        settings.LLM_PROVIDERS = ["anthropic"]
        settings.ANTHROPIC_API_KEY = "sk-ant-test"
        settings.ANTHROPIC_BASE_URL = llm.anthropic_url
        settings.ANTHROPIC_MODEL = "claude-test"
        team = await database_sync_to_async(make_chat_team)()
        general = team["general"]
        socket = await connect(team["ada"])
        assert (await socket.request({"type": "subscribe", "rooms": [general.pk]}))["type"] == "subscribed"
        ack = await socket.request(
            {"type": "send", "room_id": general.pk, "client_id": client_id, "body": "@mathia go"}, "ack"
        )
        assert ack["type"] == "ack", ack
        first = await socket.recv_until("message.stream", timeout=8, room_id=general.pk)
        try:
            yield team, socket, first
        finally:
            await socket.close()


async def _answer_while_redis_dies(settings: Any, own: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask @mathia, stop ``own`` at the answer's first frame; the final message and that frame."""
    from mathia.testing.fake_llm import Reply

    async with _asking(settings, Reply(text=ANSWER, tokens_per_second=30), "r1") as (team, socket, first):
        own.stop()  # mid-stream
        final = await socket.recv_until("message.updated", timeout=15, room_id=team["general"].pk)
    return final, first


@pytest.mark.django_db(transaction=True)
async def test_with_redis_down_the_heartbeat_still_marks_the_run_alive_and_applies_a_stop(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mathia's Redis stops mid-answer: the slot cannot be renewed (a warning), but the heartbeat's
    database half runs on, so the run stays alive for the reaper, and a Stop recorded in the
    database (its control message lost) still stops the answer, keeping its text."""
    from mathia.assistant import runner
    from mathia.assistant.models import AssistantRun
    from mathia.testing.fake_llm import Reply

    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.3)
    own = start_embedded_redis(tmp_path / "redis")
    settings.REDIS_URL = own.url
    try:
        reply = Reply(text=ANSWER * 10, tokens_per_second=20)
        async with _asking(settings, reply, "h1") as (team, socket, first):
            own.stop()
            run = await database_sync_to_async(AssistantRun.objects.get)(answer_id=first["message_id"])
            started_beat = run.heartbeat_at
            await database_sync_to_async(AssistantRun.objects.filter(pk=run.pk).update)(stopped_by=team["ada"])
            final = await socket.recv_until("message.updated", timeout=10, room_id=team["general"].pk)
    finally:
        own.stop()
    assert final["message"]["status"] == "stopped", final
    assert final["message"]["body"].startswith(first["delta"])  # the text so far is kept
    run = await database_sync_to_async(AssistantRun.objects.get)(pk=run.pk)
    assert run.heartbeat_at > started_beat  # the database half of the beat ran with Redis down
    assert "assistant_heartbeat_redis_failed" in caplog.text
    assert "assistant_heartbeat_failed" not in caplog.text
