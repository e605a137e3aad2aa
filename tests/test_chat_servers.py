"""Chat against real server processes: delivery across two web processes, HTTP views."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async

from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.ws import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.server]


async def _open(base: str, user: Any) -> Any:
    cookie = await session_cookie(user)
    url = base.replace("http://", "ws://") + "/ws/"
    ws = await websockets.connect(url, additional_headers={"Cookie": f"sessionid={cookie}"}, origin=base)
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    return ws


async def _next(ws: Any, type_: str, timeout: float = 5) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == type_:
                return frame


async def test_two_web_processes_deliver_each_others_messages() -> None:
    workspace, (ada, bob) = await database_sync_to_async(make_team)(2)
    room = await database_sync_to_async(make_room)(ada, workspace, "general", members=[bob])
    with running_server() as first, running_server() as second:
        ada_ws = await _open(first, ada)
        bob_ws = await _open(second, bob)
        # Browsers offer permessage-deflate; the server declines it (~50 KiB of zlib per socket).
        assert ada_ws.protocol.extensions == []
        for ws in (ada_ws, bob_ws):
            await ws.send(json.dumps({"type": "subscribe", "rooms": [room.pk]}))
            await _next(ws, "subscribed")
        await ada_ws.send(
            json.dumps({"type": "send", "room_id": room.pk, "client_id": "x-proc-1", "body": "from process one"})
        )
        received = await _next(bob_ws, "message.new")
        assert received["message"]["body"] == "from process one"
        await bob_ws.send(json.dumps({"type": "send", "room_id": room.pk, "client_id": "x-proc-2", "body": "and back"}))
        received = await _next(ada_ws, "message.new")
        while received["message"]["body"] != "and back":
            received = await _next(ada_ws, "message.new")
        await ada_ws.close()
        await bob_ws.close()
