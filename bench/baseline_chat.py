"""The baseline for bench/fanout.py: a chat consumer as the Channels tutorial writes it.

Served by daphne on RedisChannelLayer, one group_send per message, json.dumps per recipient.
No database, no authentication: it does strictly less work than Mathia per message.
Run by bench/fanout.py as: daphne bench.baseline_chat:application
"""

from __future__ import annotations

import json
import os

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [os.environ["BASELINE_REDIS_URL"]]},
            }
        },
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import re_path


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or "{}")["message"]
        await self.channel_layer.group_send(self.room_group_name, {"type": "chat.message", "message": message})

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send(text_data=json.dumps({"message": event["message"]}))


application = ProtocolTypeRouter(
    {"websocket": URLRouter([re_path(r"ws/chat/(?P<room_name>\w+)/$", ChatConsumer.as_asgi())])}
)
