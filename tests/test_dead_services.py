"""A backing service that dies mid-use gives a clear answer and loses nothing."""

from __future__ import annotations

import json
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
