"""Writes for MCP: tokens, the workspace switch, external servers and their tools."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction

from mathia.core.clock import Clock, system_clock
from mathia.core.errors import AppError, InvalidInput, NotFound, PermissionDenied
from mathia.mcpbridge import client
from mathia.mcpbridge.crypto import encrypt_secret
from mathia.mcpbridge.models import (
    SERVER_NAME_MAX,
    TOKEN_NAME_MAX,
    AccessToken,
    ExternalServer,
    ExternalTool,
    ServerState,
    Transport,
    WorkspaceMcp,
)
from mathia.mcpbridge.network import check_public_url
from mathia.mcpbridge.tokens import display_prefix, new_token, token_hash
from mathia.workspaces.access import access_workspace_for_user, check_workspace_admin
from mathia.workspaces.models import Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

TOKEN_LIFETIMES_DAYS = (7, 30, 90, 365)
MAX_TOKENS_PER_USER = 50
_SERVER_NAME = re.compile(rf"^[a-z][a-z0-9-]{{0,{SERVER_NAME_MAX - 1}}}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "content-type", "accept", "mcp-session-id"})


@dataclass(frozen=True)
class CreatedToken:
    row: AccessToken
    token: str  # shown once, never stored


def token_create(
    *, user: User, workspace_slug: str, name: str, lifetime_days: int | None, clock: Clock = system_clock
) -> CreatedToken:
    """A new personal access token for ``user`` in one of their workspaces; the plain token is returned once."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name, such as the app that will use it.", field="name")
    if len(name) > TOKEN_NAME_MAX:
        raise InvalidInput(f"A token name is at most {TOKEN_NAME_MAX} characters.", field="name")
    if lifetime_days is not None and lifetime_days not in TOKEN_LIFETIMES_DAYS:
        raise InvalidInput("Choose one of the offered lifetimes.", field="lifetime")
    membership = access_workspace_for_user(user=user, slug=workspace_slug)
    live = AccessToken.objects.filter(user=user, revoked_at__isnull=True).count()
    if live >= MAX_TOKENS_PER_USER:
        raise InvalidInput(f"You have {live} tokens; revoke some before creating another.", code="too_many")
    now = clock.now()
    token = new_token()
    row = AccessToken.objects.create(
        user=user,
        workspace_id=membership.workspace_id,
        name=name,
        prefix=display_prefix(token),
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=lifetime_days) if lifetime_days else None,
    )
    log.info("mcp_token_created", pat_id=row.pk, user_id=user.pk, workspace_id=membership.workspace_id)
    return CreatedToken(row=row, token=token)


def token_revoke(*, user: User, token_id: int, clock: Clock = system_clock) -> AccessToken:
    """Revoke one of ``user``'s own tokens (someone else's answers "not found")."""
    row = AccessToken.objects.filter(pk=token_id, user=user).first()
    if row is None:
        raise NotFound("Token not found.")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        row.save(update_fields=["revoked_at"])
        log.info("mcp_token_revoked", pat_id=row.pk, user_id=user.pk)
    return row


def workspace_mcp_set_enabled(*, actor: Membership, enabled: bool, clock: Clock = system_clock) -> WorkspaceMcp:
    check_workspace_admin(actor)
    row, _ = WorkspaceMcp.objects.update_or_create(
        workspace_id=actor.workspace_id,
        defaults={"server_enabled": enabled, "updated_by_id": actor.user_id, "updated_at": clock.now()},
    )
    log.info("mcp_server_switched", workspace_id=actor.workspace_id, enabled=enabled, actor_id=actor.user_id)
    return row


def check_server_name(name: str) -> str:
    name = name.strip().lower()
    if not _SERVER_NAME.match(name):
        raise InvalidInput(
            f"A server name is 1 to {SERVER_NAME_MAX} lowercase letters, digits or hyphens, starting with a letter.",
            field="name",
        )
    return name


def check_server_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("The URL must start with http:// or https:// and name a host.", field="url")
    if parts.username or parts.password:
        raise InvalidInput("Put credentials in the auth header, not in the URL.", field="url")
    if len(url) > 500:
        raise InvalidInput("The URL is at most 500 characters.", field="url")
    check_public_url(url)
    return url


def check_stdio_server(name: str) -> str:
    """The name of one of the operator's MCP_STDIO_SERVERS (the only thing an admin chooses)."""
    allowed = settings.MCP_STDIO_SERVERS
    if not allowed:
        raise PermissionDenied(
            "Local (stdio) MCP servers are turned off on this Mathia; the operator enables chosen ones with "
            "MCP_STDIO_SERVERS.",
            code="stdio_disabled",
        )
    name = name.strip()
    if name not in allowed:
        raise InvalidInput(
            "That is not one of the local servers the operator set up; choose one of: "
            + ", ".join(sorted(allowed))
            + ".",
            field="command",
        )
    return name


def check_auth_header(name: str, value: str) -> tuple[str, str]:
    name, value = name.strip(), value.strip()
    if not name and not value:
        return "", ""
    if not _HEADER_NAME.match(name) or name.lower() in _FORBIDDEN_HEADERS:
        raise InvalidInput("The header name is letters, digits and hyphens, such as Authorization.", field="auth_name")
    if not value or any(ch in value for ch in "\r\n\0") or len(value) > 4000:
        raise InvalidInput("The header value is one line of text (at most 4,000 characters).", field="auth_value")
    return name, value


def server_register(
    *,
    actor: Membership,
    name: str,
    transport: str,
    url: str = "",
    auth_header_name: str = "",
    auth_header_value: str = "",
    command: str = "",
    clock: Clock = system_clock,
) -> ExternalServer:
    """Register an external MCP server for the actor's workspace (admins only)."""
    check_workspace_admin(actor)
    name = check_server_name(name)
    fields: dict[str, Any] = {}
    if transport == Transport.HTTP:
        fields["url"] = check_server_url(url)
        header_name, header_value = check_auth_header(auth_header_name, auth_header_value)
        if header_name:
            fields["auth_header_name"] = header_name
            fields["auth_header_value_encrypted"] = encrypt_secret(header_value)
    elif transport == Transport.STDIO:
        fields["command"] = check_stdio_server(command)
    else:
        raise InvalidInput("Choose Streamable HTTP or a local command.", field="transport")
    try:
        with transaction.atomic():
            server = ExternalServer.objects.create(
                workspace_id=actor.workspace_id,
                name=name,
                transport=transport,
                created_by_id=actor.user_id,
                created_at=clock.now(),
                **fields,
            )
    except IntegrityError:
        raise InvalidInput(f"This workspace already has an MCP server named {name}.", field="name") from None
    log.info(
        "mcp_external_server_registered",
        server_id=server.pk,
        workspace_id=actor.workspace_id,
        transport=transport,
        actor_id=actor.user_id,
    )
    return server


def server_delete(*, actor: Membership, server: ExternalServer) -> None:
    check_workspace_admin(actor)
    if server.workspace_id != actor.workspace_id:
        raise NotFound("MCP server not found.")
    server.delete()
    log.info("mcp_external_server_deleted", server_id=server.pk, actor_id=actor.user_id)


def server_set_enabled(*, actor: Membership, server: ExternalServer, enabled: bool) -> ExternalServer:
    check_workspace_admin(actor)
    server.enabled = enabled
    server.save(update_fields=["enabled"])
    return server


def tool_set_enabled(*, actor: Membership, server: ExternalServer, tool_id: int, enabled: bool) -> ExternalTool:
    check_workspace_admin(actor)
    tool = ExternalTool.objects.filter(pk=tool_id, server=server).first()
    if tool is None:
        raise NotFound("Tool not found.")
    tool.enabled = enabled
    if enabled:
        tool.review_note = ""
    tool.save(update_fields=["enabled", "review_note"])
    log.info("mcp_external_tool_switched", tool_id=tool.pk, enabled=enabled, actor_id=actor.user_id)
    return tool


def tool_set_read_only(*, actor: Membership, server: ExternalServer, tool_id: int, read_only: bool) -> ExternalTool:
    """The admin's judgement that a tool only reads (then models may call it after reading others' words)."""
    check_workspace_admin(actor)
    tool = ExternalTool.objects.filter(pk=tool_id, server=server).first()
    if tool is None:
        raise NotFound("Tool not found.")
    tool.read_only = read_only
    tool.save(update_fields=["read_only"])
    log.info("mcp_external_tool_read_only", tool_id=tool.pk, read_only=read_only, actor_id=actor.user_id)
    return tool


def server_refresh(*, server: ExternalServer, clock: Clock = system_clock) -> client.McpServerDown | None:
    """Ask the server for its tools now and record them, or record that it is down (and say why).

    Sync, for views and tasks: the network call runs on an event loop (the caller's thread
    waits up to MCP_CLIENT_TIMEOUT).
    """
    from asgiref.sync import async_to_sync

    try:
        endpoint = client.endpoint_for(server)
        tools = async_to_sync(client.list_tools)(endpoint)
    except client.McpServerDown as down:
        server_record_failure(server_id=server.pk, error=down.message, clock=clock)
        return down
    except AppError as error:  # e.g. its auth header cannot be decrypted any more
        server_record_failure(server_id=server.pk, error=error.message, clock=clock)
        return client.McpServerDown(error.message, server=server.name)
    server_record_listing(server_id=server.pk, tools=tools, clock=clock)
    return None


def server_record_listing(*, server_id: int, tools: list[client.ListedTool], clock: Clock = system_clock) -> None:
    """Store what a server listed: its state is ``ok``, its tools are as seen.

    The server is not trusted to change a tool after an admin reviewed it: a tool whose
    description, schema or read-only hint differs from what was stored is turned off (with the
    reason on the page) and loses its read-only mark until an admin looks again. Tools seen for
    the first time are enabled when the server is new (the admin just chose it and sees what it
    offers) and disabled when they appear later.
    """
    now = clock.now()
    with transaction.atomic():
        server = ExternalServer.objects.select_for_update().filter(pk=server_id).first()
        if server is None:
            return
        first_listing = server.last_ok_at is None
        existing = {tool.name: tool for tool in server.tools.all()}
        seen = set()
        for listed in tools:
            seen.add(listed.name)
            tool = existing.get(listed.name)
            if tool is None:
                ExternalTool.objects.create(
                    server=server,
                    name=listed.name,
                    description=listed.description,
                    input_schema=listed.input_schema,
                    hinted_read_only=listed.read_only,
                    enabled=first_listing,
                    available=True,
                    first_seen_at=now,
                )
                continue
            changed = [
                what
                for what, differs in (
                    ("description", tool.description != listed.description),
                    ("input schema", tool.input_schema != listed.input_schema),
                    ("read-only hint", tool.hinted_read_only != listed.read_only),
                )
                if differs
            ]
            if changed:
                if tool.enabled or tool.read_only:
                    tool.review_note = (
                        f"Turned off: the server changed its {', '.join(changed)} since it was reviewed. "
                        "Check it, then turn it on again."
                    )
                    log.warning("mcp_external_tool_changed", tool_id=tool.pk, changed=changed)
                tool.enabled = False
                tool.read_only = False
                tool.description = listed.description
                tool.input_schema = listed.input_schema
                tool.hinted_read_only = listed.read_only
            tool.available = True
            tool.save()
        server.tools.exclude(name__in=seen).update(available=False)
        server.state = ServerState.OK
        server.last_checked_at = now
        server.last_ok_at = now
        server.last_error = ""
        server.save(update_fields=["state", "last_checked_at", "last_ok_at", "last_error"])


def server_record_failure(*, server_id: int, error: str, clock: Clock = system_clock) -> None:
    """Mark a server down with the reason people can read (no secrets: see client.describe_failure)."""
    ExternalServer.objects.filter(pk=server_id).update(
        state=ServerState.DOWN, last_checked_at=clock.now(), last_error=error[:500]
    )


def server_record_up(*, server_id: int, clock: Clock = system_clock) -> None:
    """A call answered: the server is reachable again (its tool list is refreshed separately)."""
    now = clock.now()
    ExternalServer.objects.filter(pk=server_id).update(
        state=ServerState.OK, last_checked_at=now, last_ok_at=now, last_error=""
    )
