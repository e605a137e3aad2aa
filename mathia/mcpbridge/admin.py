from django.contrib import admin

from mathia.mcpbridge.models import AccessToken, ExternalServer, ExternalTool, WorkspaceMcp


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """Tokens for the operator to see and revoke (set revoked_at); their hash is never editable."""

    list_display = ("name", "user", "workspace", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__email", "workspace__slug", "prefix")
    readonly_fields = ("user", "workspace", "prefix", "token_hash", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False  # tokens are made by their owners, in Settings, so they see them once


@admin.register(WorkspaceMcp)
class WorkspaceMcpAdmin(admin.ModelAdmin):
    list_display = ("workspace", "server_enabled", "updated_by", "updated_at")
    list_filter = ("server_enabled",)


class ExternalToolInline(admin.TabularInline):
    model = ExternalTool
    extra = 0
    fields = ("name", "enabled", "read_only", "hinted_read_only", "available", "review_note", "first_seen_at")
    readonly_fields = ("name", "hinted_read_only", "available", "review_note", "first_seen_at")


@admin.register(ExternalServer)
class ExternalServerAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "transport", "enabled", "state", "last_checked_at")
    list_filter = ("transport", "state", "enabled")
    search_fields = ("name", "workspace__slug", "url", "command")
    # The encrypted header is left out: it can only be set through Settings → MCP servers.
    exclude = ("auth_header_value_encrypted",)
    readonly_fields = ("state", "last_checked_at", "last_ok_at", "last_error", "created_at", "created_by")
    inlines = [ExternalToolInline]
