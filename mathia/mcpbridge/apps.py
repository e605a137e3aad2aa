from django.apps import AppConfig


class McpBridgeConfig(AppConfig):
    """The Model Context Protocol both ways: Mathia's server at /mcp, and external servers' tools.

    The label is not ``mcp``: the SDK's top-level package has that name.
    """

    name = "mathia.mcpbridge"
    label = "mcpbridge"
    verbose_name = "Model Context Protocol"
