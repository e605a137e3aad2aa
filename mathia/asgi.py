"""The ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mathia.settings")

# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from mathia.assistant.apps import preload_provider_sdks  # noqa: E402
from mathia.mcpbridge.asgi import with_mcp_endpoint  # noqa: E402
from mathia.realtime.auth import SessionAuthMiddleware  # noqa: E402
from mathia.realtime.routing import websocket_urlpatterns  # noqa: E402

# Answers run in this process: load the configured providers' SDKs now, not on the first answer.
preload_provider_sdks()

# Database work runs in threads beside the event loop. Each query releases the GIL while it
# waits for PostgreSQL and must take it back from a busy loop thread, by default after up to
# 5 ms: twenty queries for a question cost up to 100 ms of waiting at 50 streaming answers.
# 0.5 ms, measured in docs/performance.md ("2026-12-02: the critical path cut"; 0.1 ms was no
# better: "2026-12-02, later").
GIL_SWITCH_INTERVAL_SECONDS = 0.0005
sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)

application = ProtocolTypeRouter(
    {
        # /mcp is Mathia's MCP server (mathia/mcpbridge); every other path is Django.
        "http": with_mcp_endpoint(django_asgi_app),
        # The session authenticates the socket; the Origin must be one of ALLOWED_HOSTS.
        "websocket": AllowedHostsOriginValidator(SessionAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
