"""Celery adapters for MCP: keep each external server's state and tool list current."""

from __future__ import annotations

import structlog
from celery import shared_task

from mathia.mcpbridge.actions import server_refresh
from mathia.mcpbridge.models import ExternalServer

log = structlog.get_logger(__name__)


@shared_task(name="mcpbridge.check_servers", ignore_result=True)
def check_servers() -> int:
    """Ask every enabled external server for its tools; a server that is down is marked so.

    The admin page then shows each server's state even when nobody called its tools lately.
    Returns how many servers answered.
    """
    answered = 0
    for server_id in ExternalServer.objects.filter(enabled=True).values_list("pk", flat=True):
        server = ExternalServer.objects.filter(pk=server_id, enabled=True).first()
        if server is None:  # removed or disabled meanwhile
            continue
        down = server_refresh(server=server)
        if down is None:
            answered += 1
        else:
            log.info("mcp_server_down", server_id=server_id, reason=down.message)
    return answered
