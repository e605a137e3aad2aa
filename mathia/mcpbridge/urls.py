from django.urls import path

from mathia.mcpbridge import views

urlpatterns = [
    path("settings/tokens", views.tokens, name="mcp_tokens"),
    path("settings/tokens/<int:token_id>/revoke", views.token_revoke, name="mcp_token_revoke"),
    path("settings/mcp", views.mcp_index, name="mcp_settings"),
    path("settings/mcp/<slug:slug>", views.mcp_workspace, name="mcp_workspace"),
    path("settings/mcp/<slug:slug>/enabled", views.mcp_set_enabled, name="mcp_set_enabled"),
    path("settings/mcp/<slug:slug>/servers", views.server_add, name="mcp_server_add"),
    path("settings/mcp/<slug:slug>/servers/<int:server_id>/refresh", views.server_refresh, name="mcp_server_refresh"),
    path(
        "settings/mcp/<slug:slug>/servers/<int:server_id>/enabled", views.server_set_enabled, name="mcp_server_enabled"
    ),
    path("settings/mcp/<slug:slug>/servers/<int:server_id>/delete", views.server_delete, name="mcp_server_delete"),
    path(
        "settings/mcp/<slug:slug>/servers/<int:server_id>/tools/<int:tool_id>/enabled",
        views.tool_set_enabled,
        name="mcp_tool_enabled",
    ),
    path(
        "settings/mcp/<slug:slug>/servers/<int:server_id>/tools/<int:tool_id>/read-only",
        views.tool_set_read_only,
        name="mcp_tool_read_only",
    ),
]
