"""The settings pages: Access tokens (everyone) and MCP servers (workspace admins)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mathia.mcpbridge.models import AccessToken, ExternalServer, ServerState, WorkspaceMcp
from mathia.mcpbridge.tokens import token_hash
from mathia.workspaces.models import Membership
from tests.chat_helpers import make_team
from tests.helpers import assert_error, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _servers_on_this_machine(settings: Any) -> None:
    """The test MCP servers listen on 127.0.0.1, which production refuses by default."""
    settings.MCP_CLIENT_PRIVATE_NETWORKS = True


_NEW_TOKEN = re.compile(r'data-new-token value="([^"]+)"')


def _create(client: Any, **form: str) -> Any:
    return client.post("/settings/tokens", {"lifetime": "30", **form})


def test_a_token_is_shown_once_stored_hashed_and_revocable(client: Any) -> None:
    workspace, (_ada, bob) = make_team(2)
    client.force_login(bob)
    page = client.get("/settings/tokens")
    assert page.status_code == 200
    assert b"You have no tokens yet." in page.content
    assert b"http://testserver/mcp" in page.content

    created = _create(client, name="Claude Desktop", workspace=workspace.slug)
    assert created.status_code == 302  # to the list, so a reload does not make a second token
    created = client.get(created["Location"])
    assert created["Cache-Control"] == "no-store"
    token = _NEW_TOKEN.search(created.content.decode()).group(1)  # type: ignore[union-attr]
    assert token.startswith("mathia_pat_")
    row = AccessToken.objects.get(user=bob)
    assert (row.name, row.workspace_id, row.token_hash) == ("Claude Desktop", workspace.pk, token_hash(token))
    assert token not in str(list(AccessToken.objects.values()))  # only the hash is kept
    assert row.expires_at is not None
    assert 29 <= (row.expires_at - row.created_at).days <= 30
    assert b"MCP is off here: ask an admin" in created.content

    again = client.get("/settings/tokens")
    assert token.encode() not in again.content  # never shown again
    assert row.prefix.encode() in again.content
    assert b"<td data-status>active</td>" in again.content

    # Someone else cannot revoke it, nor see it.
    other = make_user()
    client.force_login(other)
    assert row.prefix.encode() not in client.get("/settings/tokens").content
    assert_error(client.post(f"/settings/tokens/{row.pk}/revoke"), status=404, code="not_found")

    client.force_login(bob)
    revoked = client.post(f"/settings/tokens/{row.pk}/revoke", follow=True)
    assert b"is revoked" in revoked.content
    assert b"<td data-status>revoked</td>" in revoked.content
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_bad_token_requests_get_clear_errors(client: Any) -> None:
    workspace, (_ada, bob) = make_team(2)
    client.force_login(bob)
    assert_error(_create(client, name="  ", workspace=workspace.slug), status=400, code="invalid")
    assert_error(_create(client, name="x" * 81, workspace=workspace.slug), status=400, code="invalid")
    assert_error(_create(client, name="ok", workspace=workspace.slug, lifetime="3"), status=400, code="invalid")
    other, _ = make_team(1, workspace_name="Elsewhere")
    assert_error(_create(client, name="ok", workspace=other.slug), status=404, code="not_found")
    assert not AccessToken.objects.exists()
    client.logout()
    assert client.get("/settings/tokens").status_code == 302  # to sign in


def test_only_admins_manage_mcp_and_the_switch_works(client: Any) -> None:
    workspace, (ada, bob) = make_team(2)
    client.force_login(bob)
    assert_error(client.get(f"/settings/mcp/{workspace.slug}"), status=403, code="forbidden")
    assert_error(
        client.post(f"/settings/mcp/{workspace.slug}/enabled", {"enabled": "on"}), status=403, code="forbidden"
    )
    assert not WorkspaceMcp.objects.filter(server_enabled=True).exists()
    # Bob owns his own default workspace, so the index shows only that one.
    index = client.get("/settings/mcp")
    assert index.status_code == 302
    assert workspace.slug not in index["Location"]

    client.force_login(ada)
    page = client.get(f"/settings/mcp/{workspace.slug}")
    assert page.status_code == 200
    assert b'data-server-enabled="off"' in page.content
    client.post(f"/settings/mcp/{workspace.slug}/enabled", {"enabled": "on"})
    assert WorkspaceMcp.objects.get(workspace=workspace).server_enabled is True
    assert b'data-server-enabled="on"' in client.get(f"/settings/mcp/{workspace.slug}").content
    client.post(f"/settings/mcp/{workspace.slug}/enabled", {"enabled": "off"})
    assert WorkspaceMcp.objects.get(workspace=workspace).server_enabled is False

    stranger = make_user()
    client.force_login(stranger)
    assert_error(client.get(f"/settings/mcp/{workspace.slug}"), status=404, code="not_found")


def test_adding_a_server_that_is_down_shows_its_state(client: Any) -> None:
    from mathia.embedded.redis import free_port

    workspace, (ada,) = make_team(1)
    client.force_login(ada)
    url = f"/settings/mcp/{workspace.slug}/servers"
    bad = client.post(url, {"name": "Not A Name!", "transport": "http", "url": "http://127.0.0.1:1/mcp"})
    assert_error(bad, status=400, code="invalid")
    assert b"lowercase letters" in bad.content
    bad_url = client.post(url, {"name": "calc", "transport": "http", "url": "ftp://example.com"})
    assert_error(bad_url, status=400, code="invalid")
    creds = client.post(url, {"name": "calc", "transport": "http", "url": "http://u:p@127.0.0.1/mcp"})
    assert b"Put credentials in the auth header" in creds.content
    stdio = client.post(url, {"name": "calc", "transport": "stdio", "command": "/bin/sh"})
    assert_error(stdio, status=403, code="stdio_disabled")
    assert not ExternalServer.objects.exists()

    dead = f"http://127.0.0.1:{free_port()}/mcp"
    added = client.post(
        url,
        {"name": "calc", "transport": "http", "url": dead, "auth_name": "Authorization", "auth_value": "Bearer hush"},
        follow=True,
    )
    assert added.status_code == 200
    server = ExternalServer.objects.get(workspace=workspace)
    assert server.state == ServerState.DOWN
    content = added.content.decode()
    assert "calc is added, but the MCP server calc is not reachable" in content
    assert "data-last-error>The MCP server calc is not reachable: connection refused" in content
    assert "hush" not in content  # the header's value is never shown back
    assert "header Authorization: ••••••" in content

    duplicate = client.post(url, {"name": "calc", "transport": "http", "url": dead})
    assert_error(duplicate, status=400, code="invalid")

    client.post(f"/settings/mcp/{workspace.slug}/servers/{server.pk}/delete")
    assert not ExternalServer.objects.exists()
    other_workspace, (other_admin,) = make_team(1, workspace_name="Other")
    foreign = ExternalServer.objects.create(
        workspace=other_workspace, name="theirs", transport="http", url=dead, created_at=server.created_at
    )
    assert_error(
        client.post(f"/settings/mcp/{workspace.slug}/servers/{foreign.pk}/delete"), status=404, code="not_found"
    )
    assert ExternalServer.objects.filter(pk=foreign.pk).exists()
    assert Membership.objects.filter(user=other_admin).exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/mcp",
        "http://localhost/mcp",
        "http://10.1.2.3/mcp",
        "http://169.254.169.254/latest",
        "http://[::1]/mcp",
    ],
)
def test_servers_on_private_networks_are_refused_unless_the_operator_allows_them(
    client: Any, settings: Any, url: str
) -> None:
    settings.MCP_CLIENT_PRIVATE_NETWORKS = False
    workspace, (ada,) = make_team(1)
    client.force_login(ada)
    refused = client.post(
        f"/settings/mcp/{workspace.slug}/servers", {"name": "inside", "transport": "http", "url": url}
    )
    assert_error(refused, status=400, code="mcp_private_address")
    assert b"MCP_CLIENT_PRIVATE_NETWORKS=true" in refused.content
    assert not ExternalServer.objects.exists()


def test_a_server_whose_name_now_resolves_privately_is_refused_at_call_time(settings: Any) -> None:
    """Registration checked the address; each connection checks again (the name may move)."""
    from asgiref.sync import async_to_sync

    from mathia.mcpbridge.client import Endpoint, list_tools

    settings.MCP_CLIENT_PRIVATE_NETWORKS = False
    with pytest.raises(Exception) as refused:  # noqa: PT011
        async_to_sync(list_tools)(Endpoint(server_id=1, name="moved", transport="http", url="http://localhost:9/mcp"))
    assert getattr(refused.value, "code", None) == "mcp_private_address"


def test_the_pages_are_sections_of_settings_for_the_right_people(client: Any) -> None:
    workspace, (ada, bob) = make_team(2)
    Membership.objects.filter(workspace=workspace).exclude(user=ada).update(role="member")
    client.force_login(bob)
    page = client.get("/settings/tokens").content.decode()
    assert 'data-section="tokens"' in page
    assert 'aria-current="page"' in page
    # Bob owns his own default workspace, so he administers one: he sees MCP servers too.
    assert 'data-section="mcp"' in page
    assert 'data-section="profile"' in page
    client.force_login(ada)
    page = client.get(f"/settings/mcp/{workspace.slug}").content.decode()
    assert '<li class="current" data-section="mcp">' in page
