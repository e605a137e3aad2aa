"""Personal access tokens, the per-workspace MCP switch, and registered external MCP servers."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

TOKEN_NAME_MAX = 80
SERVER_NAME_MAX = 32


class AccessToken(models.Model):
    """A personal access token for Mathia's MCP server, bound to one workspace.

    Only a SHA-256 of the token is stored: the token itself has 256 bits of randomness, so a
    fast hash is enough (a slow password hash would only cost every MCP request time), and
    a leaked database does not leak usable tokens. ``prefix`` (the first characters) lets
    its owner tell tokens apart.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_tokens")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="mcp_tokens")
    name = models.CharField(max_length=TOKEN_NAME_MAX)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class WorkspaceMcp(models.Model):
    """Whether MCP clients may use the workspace through Mathia's server (off until an admin says so)."""

    workspace = models.OneToOneField("workspaces.Workspace", on_delete=models.CASCADE, related_name="mcp")
    server_enabled = models.BooleanField(default=False)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"MCP for workspace {self.workspace_id}: {'on' if self.server_enabled else 'off'}"


class Transport(models.TextChoices):
    HTTP = "http", "Streamable HTTP"
    STDIO = "stdio", "Local command (stdio)"


class ServerState(models.TextChoices):
    UNKNOWN = "unknown", "Not checked yet"
    OK = "ok", "Reachable"
    DOWN = "down", "Down"


class ExternalServer(models.Model):
    """An external MCP server a workspace admin registered; its tools reach @mathia through the router."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="mcp_servers")
    name = models.CharField(max_length=SERVER_NAME_MAX, help_text="Short name; its tools are called name__tool.")
    transport = models.CharField(max_length=8, choices=Transport.choices)
    url = models.URLField(max_length=500, blank=True)
    auth_header_name = models.CharField(max_length=64, blank=True)
    # Fernet ciphertext (mathia.mcpbridge.secrets); never shown back, never logged.
    auth_header_value_encrypted = models.TextField(blank=True)
    # stdio: the name of one of the operator's MCP_STDIO_SERVERS (its command line is read from
    # the settings at each start, so the operator removing it stops it).
    command = models.CharField(max_length=32, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField()
    state = models.CharField(max_length=8, choices=ServerState.choices, default=ServerState.UNKNOWN)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="mcp_server_unique_name_per_workspace"),
            models.CheckConstraint(
                condition=(Q(transport="http") & ~Q(url="")) | (Q(transport="stdio") & ~Q(command="")),
                name="mcp_server_has_endpoint",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_auth_header(self) -> bool:
        return bool(self.auth_header_name and self.auth_header_value_encrypted)


class ExternalTool(models.Model):
    """A tool an external server listed, as last seen, with the admin's enable switch."""

    server = models.ForeignKey(ExternalServer, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    input_schema = models.JSONField(default=dict)
    enabled = models.BooleanField(default=False)
    # The admin's judgement: only a tool an admin marked read-only is an ordinary tool in the
    # router; any other is sensitive and has side effects (see mcpbridge/tools.py).
    read_only = models.BooleanField(default=False)
    # What the server claims (its readOnlyHint): shown to the admin, never trusted by itself.
    hinted_read_only = models.BooleanField(default=False)
    # Why an enabled tool was turned off by Mathia (the server changed it since it was reviewed).
    review_note = models.CharField(max_length=300, blank=True)
    # False once the server stopped listing it (kept so the admin's choice survives a blip).
    available = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="mcp_tool_unique_name_per_server")]

    def __str__(self) -> str:
        return f"{self.server.name}.{self.name}"
