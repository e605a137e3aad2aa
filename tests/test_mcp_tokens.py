"""Tokens, secrets and names below the pages: expiry and last use on a clock, key rotation, settings."""

from __future__ import annotations

from typing import Any

import pytest

from mathia.core.clock import FrozenClock
from mathia.core.config import ConfigError, load_config
from mathia.mcpbridge.access import McpDisabled, Unauthenticated, authenticate_token
from mathia.mcpbridge.actions import server_refresh, server_register, token_create, workspace_mcp_set_enabled
from mathia.mcpbridge.crypto import decrypt_secret, encrypt_secret
from mathia.mcpbridge.models import AccessToken, ExternalServer, ServerState
from mathia.mcpbridge.tools import router_tool_name
from mathia.workspaces.actions import membership_remove
from mathia.workspaces.models import Membership
from tests.chat_helpers import make_team

pytestmark = pytest.mark.django_db


def _enabled_team() -> tuple[Any, Any, Membership]:
    workspace, (ada, bob) = make_team(2)
    owner = Membership.objects.get(workspace=workspace, user=ada)
    workspace_mcp_set_enabled(actor=owner, enabled=True)
    return workspace, bob, owner


def test_expiry_and_last_use_follow_the_clock() -> None:
    workspace, bob, _ = _enabled_team()
    clock = FrozenClock()
    token = token_create(user=bob, workspace_slug=workspace.slug, name="t", lifetime_days=7, clock=clock).token
    principal = authenticate_token(token=token, clock=clock)
    assert (principal.user.pk, principal.workspace_id) == (bob.pk, workspace.pk)
    first_use = AccessToken.objects.get(user=bob).last_used_at
    assert first_use == clock.now()
    clock.advance(seconds=30)
    authenticate_token(token=token, clock=clock)
    assert AccessToken.objects.get(user=bob).last_used_at == first_use  # at most one write a minute
    clock.advance(seconds=31)
    authenticate_token(token=token, clock=clock)
    assert AccessToken.objects.get(user=bob).last_used_at == clock.now()
    clock.advance(days=7)
    with pytest.raises(Unauthenticated) as expired:
        authenticate_token(token=token, clock=clock)
    assert expired.value.code == "token_expired"


def test_a_token_stops_working_when_its_owner_leaves_or_mcp_is_turned_off() -> None:
    workspace, bob, owner = _enabled_team()
    token = token_create(user=bob, workspace_slug=workspace.slug, name="t", lifetime_days=None).token
    authenticate_token(token=token)
    workspace_mcp_set_enabled(actor=owner, enabled=False)
    with pytest.raises(McpDisabled):
        authenticate_token(token=token)
    workspace_mcp_set_enabled(actor=owner, enabled=True)
    membership_remove(actor=owner, target=Membership.objects.get(workspace=workspace, user=bob))
    with pytest.raises(Unauthenticated, match="no longer in its workspace"):
        authenticate_token(token=token)
    bob.is_active = False
    bob.save()
    with pytest.raises(Unauthenticated, match="disabled"):
        authenticate_token(token=token)
    for junk in ("", "Bearer", "mathia_pat_short", "x" * 300):
        with pytest.raises(Unauthenticated):
            authenticate_token(token=junk)


def test_auth_headers_are_encrypted_and_a_new_secret_key_is_reported_not_used(settings: Any) -> None:
    sealed = encrypt_secret("Bearer hush")
    assert "hush" not in sealed
    assert decrypt_secret(sealed) == "Bearer hush"
    assert encrypt_secret("Bearer hush") != sealed  # a fresh nonce each time

    settings.MCP_CLIENT_PRIVATE_NETWORKS = True
    _, _, owner = _enabled_team()
    server = server_register(
        actor=owner,
        name="calc",
        transport="http",
        url="http://127.0.0.1:9/mcp",
        auth_header_name="Authorization",
        auth_header_value="Bearer hush",
    )
    settings.SECRET_KEY = "another-secret-key-" * 4
    down = server_refresh(server=ExternalServer.objects.get(pk=server.pk))
    assert down is not None
    assert "auth header cannot be read" in down.message
    server.refresh_from_db()
    assert server.state == ServerState.DOWN


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("calc", "add", "mcp_calc_add"),
        ("git-hub", "files.read", "mcp_git-hub_files_read"),
        ("calc", "x" * 60, None),  # past the 64 characters every model API accepts
    ],
)
def test_external_tool_names_fit_every_model_api(server: str, tool: str, expected: str | None) -> None:
    assert router_tool_name(server, tool) == expected


def test_mcp_settings_are_validated_at_start_up() -> None:
    servers = load_config({"MCP_STDIO_SERVERS": "git=/usr/bin/mcp-git --repository '/srv/my repo'; time=/opt/t"})
    assert servers.MCP_STDIO_SERVERS == {
        "git": ["/usr/bin/mcp-git", "--repository", "/srv/my repo"],
        "time": ["/opt/t"],
    }
    with pytest.raises(ConfigError, match="MCP_STDIO_SERVERS: each command must start with an absolute path"):
        load_config({"MCP_STDIO_SERVERS": "x=npx -y pkg"})
    with pytest.raises(ConfigError, match="MCP_STDIO_SERVERS: must look like name="):
        load_config({"MCP_STDIO_SERVERS": "/usr/bin/mcp-git"})
    with pytest.raises(ConfigError, match="MCP_REQUEST_RATE_LIMIT"):
        load_config({"MCP_REQUEST_RATE_LIMIT": "lots"})
    with pytest.raises(ConfigError, match="MCP_CLIENT_TIMEOUT"):
        load_config({"MCP_CLIENT_TIMEOUT": "0"})
    assert load_config({}).MCP_CLIENT_PRIVATE_NETWORKS is False
