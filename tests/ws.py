"""WebSocket helpers: a signed-in communicator speaking Mathia's protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from mathia.asgi import application

_refs = itertools.count(1)
# How long a test waits for a frame that must come. Generous: it costs nothing when the frame
# comes, and a loaded 2-core CI machine can take seconds for a first send (a 3 s wait flaked).
WAIT = 10.0


def session_cookie_sync(user: Any) -> str:
    """A session id for ``user``, as a browser gets after signing in."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def session_cookie(user: Any) -> str:
    return await database_sync_to_async(session_cookie_sync)(user)


class Socket:
    """One browser tab's socket."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.hello: dict[str, Any] = {}
        # Frames read while waiting for something else (a request's reply), kept in order:
        # an event may arrive before the ack of the frame that caused it.
        self.backlog: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> str:
        frame.setdefault("ref", f"r{next(_refs)}")
        await self.communicator.send_to(text_data=json.dumps(frame))
        return str(frame["ref"])

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        return await self._read(timeout)

    async def _read(self, timeout: float) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def recv_until(self, type_: str, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """The next frame of ``type_`` (matching ``match``), skipping others (presence, typing...)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {type_} frame matching {match}")
            frame = await self.recv(timeout=remaining)
            if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def request(self, frame: dict[str, Any], reply: str | None = None, timeout: float = WAIT) -> dict[str, Any]:
        """Send ``frame`` and return the reply (or error) carrying the same ref."""
        ref = await self.send(frame)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no reply to {frame}")
            answer = await self._read(timeout=remaining)
            if answer.get("ref") == ref and (reply is None or answer["type"] in (reply, "error")):
                return answer
            self.backlog.append(answer)

    async def nothing_more(self, timeout: float = 0.3, ignore: tuple[str, ...] = ("presence", "typing")) -> None:
        # receive_nothing, unlike a timed-out receive, does not cancel the application.
        while self.backlog or not await self.communicator.receive_nothing(timeout=timeout):
            frame = await self.recv()
            if frame["type"] not in ignore:
                raise AssertionError(f"unexpected frame {frame}")

    async def close(self) -> None:
        await self.communicator.disconnect()


async def connect(user: Any | None, *, origin: str = "http://127.0.0.1") -> Socket:
    headers = [(b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await session_cookie(user)}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    socket = Socket(communicator)
    if user is not None:
        socket.hello = await socket.recv()
        assert socket.hello["type"] == "hello"
    return socket
