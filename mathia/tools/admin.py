from django.contrib import admin

from mathia.tools.models import ToolCall


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    """The audit log, read-only: who called which tool, with what (secrets removed), and how it went."""

    list_display = ("created_at", "tool", "user", "via", "status", "code", "cached", "latency_ms")
    list_filter = ("status", "via", "tool", "cached")
    search_fields = ("tool", "user__email", "code")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in ToolCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
