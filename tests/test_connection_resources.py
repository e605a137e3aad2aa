"""What an open socket costs the shared services: no Redis connection of its own.

Django keeps cache objects per asyncio context and its Redis cache builds a pool per cache
object, so every WebSocket (and every ASGI request) used to open its own Redis connection:
10,000 sockets would have hit Redis's default ``maxclients``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from tests.chat_helpers import make_chat_team
from tests.ws import connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _tcp_connections_to(port: int) -> int:
    """This process's established TCP connections whose remote port is ``port`` (Linux)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            if remote_port == port and established and fields[9] in inodes:
                count += 1
    return count


async def test_open_sockets_share_the_processes_redis_connections() -> None:
    team: dict[str, Any] = await database_sync_to_async(make_chat_team)()
    redis_port = urlsplit(settings.TEST_BACKENDS.redis_url).port or 6379
    warm = await connect(team["ada"])  # pools and the channel layer's connections exist now
    before = _tcp_connections_to(redis_port)
    sockets = [await connect(team["ada"]) for _ in range(20)]
    try:
        opened = _tcp_connections_to(redis_port) - before
        # A pool may grow by a connection or two under concurrency, never by one per socket.
        assert opened <= 3, f"20 sockets opened {opened} Redis connections"
    finally:
        for socket in [warm, *sockets]:
            await socket.close()
