from __future__ import annotations

from django.conf import settings
from django.db import models


class ToolCall(models.Model):
    """One call through the tool router: who, which tool, with what (secrets removed), how it went.

    Written from the router's Redis Stream by ``mathia.tools.audit.audit_flush``; ``entry_id``
    (the stream entry's id) makes a flush that is repeated after a crash write each call once.
    """

    entry_id = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.SET_NULL, null=True, related_name="+")
    room_id = models.BigIntegerField(null=True, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    tool = models.CharField(max_length=64)
    via = models.CharField(max_length=8)
    arguments = models.JSONField(default=dict)
    status = models.CharField(max_length=12)
    code = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=500, blank=True)
    cached = models.BooleanField(default=False)
    latency_ms = models.FloatField()
    handler_ms = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="toolcall_user_time"),
            models.Index(fields=["workspace", "created_at"], name="toolcall_workspace_time"),
            models.Index(fields=["tool", "created_at"], name="toolcall_tool_time"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} by {self.user_id}: {self.status}"
