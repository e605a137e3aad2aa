"""The access checks of this app: a presented token, and a workspace's MCP admin page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db.models import Q

from mathia.core.clock import Clock, system_clock
from mathia.core.errors import AppError, NotFound
from mathia.mcpbridge.models import AccessToken, ExternalServer, WorkspaceMcp
from mathia.mcpbridge.tokens import looks_like_token, token_hash
from mathia.workspaces.access import access_workspace_by_id_for_user, access_workspace_for_user, check_workspace_admin
from mathia.workspaces.models import Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User

# last_used_at is written at most this often per token, so a busy client costs no write per call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class Unauthenticated(AppError):
    code = "unauthenticated"
    http_status = 401


class McpDisabled(AppError):
    code = "mcp_disabled"
    http_status = 403


@dataclass(frozen=True)
class McpPrincipal:
    """Who an MCP request acts for: the token's owner, in the token's workspace."""

    user: User
    membership: Membership
    token_id: int

    @property
    def workspace_id(self) -> int:
        return self.membership.workspace_id


def authenticate_token(*, token: str, clock: Clock = system_clock) -> McpPrincipal:
    """The principal for a bearer token, or :class:`Unauthenticated` / :class:`McpDisabled`.

    Every request is checked afresh (the server is stateless), so revoking a token, removing
    its owner from the workspace, deactivating them or turning MCP off takes effect at the
    next request.
    """
    if not looks_like_token(token):
        raise Unauthenticated("That is not a Mathia access token; create one in Settings → Access tokens.")
    row = AccessToken.objects.select_related("user", "workspace").filter(token_hash=token_hash(token)).first()
    now = clock.now()
    if row is None:
        raise Unauthenticated("This access token is not valid.")
    if row.revoked_at is not None:
        raise Unauthenticated("This access token was revoked.", code="token_revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("This access token has expired; create a new one.", code="token_expired")
    if not row.user.is_active:
        raise Unauthenticated("This access token's account is disabled.")
    try:
        membership = access_workspace_by_id_for_user(user=row.user, workspace_id=row.workspace_id)
    except NotFound:
        raise Unauthenticated("This access token's owner is no longer in its workspace.") from None
    if not WorkspaceMcp.objects.filter(workspace_id=row.workspace_id, server_enabled=True).exists():
        raise McpDisabled(
            f"MCP is turned off for the workspace {row.workspace.name}; a workspace admin can turn it on in "
            "Settings → MCP servers."
        )
    AccessToken.objects.filter(pk=row.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return McpPrincipal(user=row.user, membership=membership, token_id=row.pk)


def access_mcp_admin(*, user: User, slug: str) -> Membership:
    """The membership of a workspace admin managing MCP for ``slug`` (not found / forbidden otherwise)."""
    membership = access_workspace_for_user(user=user, slug=slug)
    check_workspace_admin(membership)
    return membership


def access_external_server(*, membership: Membership, server_id: int) -> ExternalServer:
    """A server of the admin's workspace; another workspace's answers "not found"."""
    check_workspace_admin(membership)
    server = ExternalServer.objects.filter(pk=server_id, workspace_id=membership.workspace_id).first()
    if server is None:
        raise NotFound("MCP server not found.")
    return server
