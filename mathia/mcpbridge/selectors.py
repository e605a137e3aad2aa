"""Reads for the MCP settings pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Prefetch

from mathia.core.clock import Clock, system_clock
from mathia.mcpbridge.models import AccessToken, ExternalServer, ExternalTool, WorkspaceMcp
from mathia.workspaces.models import ADMIN_ROLES, Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User


@dataclass(frozen=True)
class TokenRow:
    token: AccessToken
    status: str  # active, expired, revoked
    mcp_enabled: bool


def tokens_for_user(*, user: User, clock: Clock = system_clock) -> list[TokenRow]:
    tokens = list(AccessToken.objects.filter(user=user).select_related("workspace"))
    enabled = set(
        WorkspaceMcp.objects.filter(workspace_id__in={t.workspace_id for t in tokens}, server_enabled=True).values_list(
            "workspace_id", flat=True
        )
    )
    now = clock.now()
    rows = []
    for token in tokens:
        if token.revoked_at is not None:
            status = "revoked"
        elif token.expires_at is not None and token.expires_at <= now:
            status = "expired"
        else:
            status = "active"
        rows.append(TokenRow(token=token, status=status, mcp_enabled=token.workspace_id in enabled))
    return rows


def admin_memberships(*, user: User) -> list[Membership]:
    """The workspaces whose MCP settings ``user`` manages."""
    return list(
        Membership.objects.filter(user=user, role__in=ADMIN_ROLES)
        .select_related("workspace")
        .order_by("workspace__name")
    )


def mcp_server_enabled(*, workspace_id: int) -> bool:
    return WorkspaceMcp.objects.filter(workspace_id=workspace_id, server_enabled=True).exists()


def external_servers(*, workspace_id: int) -> list[ExternalServer]:
    return list(
        ExternalServer.objects.filter(workspace_id=workspace_id).prefetch_related(
            Prefetch("tools", queryset=ExternalTool.objects.order_by("-available", "name"))
        )
    )


def stdio_servers() -> list[str]:
    """The names of the local servers the operator set up (empty: stdio is off)."""
    return sorted(settings.MCP_STDIO_SERVERS)
