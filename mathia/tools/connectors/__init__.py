"""The built-in connectors. Each module registers its tools when imported."""

from mathia.tools.connectors import fx, gif, help, weather  # noqa: F401
