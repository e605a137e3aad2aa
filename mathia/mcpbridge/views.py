"""The settings pages: "Access tokens" (everyone) and "MCP servers" (workspace admins). Thin adapters."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mathia.core.errors import InvalidInput
from mathia.core.http import request_user
from mathia.mcpbridge import actions, selectors
from mathia.mcpbridge.access import access_external_server, access_mcp_admin
from mathia.mcpbridge.server import MCP_PATH
from mathia.usersettings.sections import render_section
from mathia.workspaces.selectors import memberships_for_user

LIFETIME_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "No expiry")]


def _lifetime(value: str) -> int | None:
    if value == "never":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput("Choose one of the offered lifetimes.", field="lifetime") from None


_NEW_TOKEN_KEY = "mcpbridge.new_token"  # noqa: S105 (a session key name)


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    error = None
    if request.method == "POST":
        try:
            created = actions.token_create(
                user=user,
                workspace_slug=request.POST.get("workspace", ""),
                name=request.POST.get("name", ""),
                lifetime_days=_lifetime(request.POST.get("lifetime", "90")),
            )
        except InvalidInput as exc:
            error = exc
        else:
            # Post/redirect/get, so a reload cannot make a second token; the session carries
            # the new token to the next page, which shows it once and forgets it.
            request.session[_NEW_TOKEN_KEY] = {"id": created.row.pk, "name": created.row.name, "token": created.token}
            return redirect("mcp_tokens")
    new_token = request.session.pop(_NEW_TOKEN_KEY, None) if request.method == "GET" else None
    context: dict[str, Any] = {
        "rows": selectors.tokens_for_user(user=user),
        "memberships": memberships_for_user(user=user),
        "lifetimes": LIFETIME_CHOICES,
        "created": new_token,
        "error": error,
        "endpoint": request.build_absolute_uri(MCP_PATH),
    }
    response = render_section(request, "tokens", "mcpbridge/tokens.html", context, status=400 if error else 200)
    if new_token is not None:
        response["Cache-Control"] = "no-store"  # the page shows the token, once
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    row = actions.token_revoke(user=request_user(request), token_id=token_id)
    messages.success(request, f"The token {row.name} is revoked; clients using it are refused from now on.")
    return redirect("mcp_tokens")


@login_required
@require_GET
def mcp_index(request: HttpRequest) -> HttpResponse:
    admin_of = selectors.admin_memberships(user=request_user(request))
    if len(admin_of) == 1:
        return redirect("mcp_workspace", slug=admin_of[0].workspace.slug)
    return render_section(request, "mcp", "mcpbridge/mcp_index.html", {"memberships": admin_of})


@login_required
@require_GET
def mcp_workspace(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    return _render_workspace(request, membership)


def _render_workspace(request: HttpRequest, membership: Any, *, error: InvalidInput | None = None) -> HttpResponse:
    workspace = membership.workspace
    context = {
        "workspace": workspace,
        "server_enabled": selectors.mcp_server_enabled(workspace_id=workspace.pk),
        "servers": selectors.external_servers(workspace_id=workspace.pk),
        "stdio_servers": selectors.stdio_servers(),
        "endpoint": request.build_absolute_uri(MCP_PATH),
        "error": error,
        "form": request.POST if error else {},
    }
    return render_section(request, "mcp", "mcpbridge/mcp_workspace.html", context, status=400 if error else 200)


@login_required
@require_POST
def mcp_set_enabled(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    enabled = request.POST.get("enabled") == "on"
    actions.workspace_mcp_set_enabled(actor=membership, enabled=enabled)
    messages.success(
        request, "MCP clients can now use this workspace." if enabled else "MCP is off for this workspace."
    )
    return redirect("mcp_workspace", slug=slug)


@login_required
@require_POST
def server_add(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    post = request.POST
    try:
        server = actions.server_register(
            actor=membership,
            name=post.get("name", ""),
            transport=post.get("transport", ""),
            url=post.get("url", ""),
            auth_header_name=post.get("auth_name", ""),
            auth_header_value=post.get("auth_value", ""),
            command=post.get("command", ""),
        )
    except InvalidInput as exc:
        return _render_workspace(request, membership, error=exc)
    _report_refresh(request, server, actions.server_refresh(server=server), added=True)
    return redirect("mcp_workspace", slug=slug)


def _report_refresh(request: HttpRequest, server: Any, down: Any, *, added: bool = False) -> None:
    if down is not None:
        text = down.message
        messages.error(request, f"{server.name} is added, but {text[0].lower()}{text[1:]}" if added else text)
    else:
        count = server.tools.filter(available=True).count()
        messages.success(request, f"{server.name}: {count} tool{'s' if count != 1 else ''} found.")


@login_required
@require_POST
def server_refresh(request: HttpRequest, slug: str, server_id: int) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    server = access_external_server(membership=membership, server_id=server_id)
    _report_refresh(request, server, actions.server_refresh(server=server))
    return redirect("mcp_workspace", slug=slug)


@login_required
@require_POST
def server_set_enabled(request: HttpRequest, slug: str, server_id: int) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    server = access_external_server(membership=membership, server_id=server_id)
    actions.server_set_enabled(actor=membership, server=server, enabled=request.POST.get("enabled") == "on")
    return redirect("mcp_workspace", slug=slug)


@login_required
@require_POST
def server_delete(request: HttpRequest, slug: str, server_id: int) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    server = access_external_server(membership=membership, server_id=server_id)
    actions.server_delete(actor=membership, server=server)
    messages.success(request, f"{server.name} is removed; its tools are gone from @mathia.")
    return redirect("mcp_workspace", slug=slug)


@login_required
@require_POST
def tool_set_enabled(request: HttpRequest, slug: str, server_id: int, tool_id: int) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    server = access_external_server(membership=membership, server_id=server_id)
    actions.tool_set_enabled(
        actor=membership, server=server, tool_id=tool_id, enabled=request.POST.get("enabled") == "on"
    )
    return redirect("mcp_workspace", slug=slug)


@login_required
@require_POST
def tool_set_read_only(request: HttpRequest, slug: str, server_id: int, tool_id: int) -> HttpResponse:
    membership = access_mcp_admin(user=request_user(request), slug=slug)
    server = access_external_server(membership=membership, server_id=server_id)
    actions.tool_set_read_only(
        actor=membership, server=server, tool_id=tool_id, read_only=request.POST.get("read_only") == "on"
    )
    return redirect("mcp_workspace", slug=slug)
