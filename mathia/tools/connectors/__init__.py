"""The built-in connectors. Each module registers its tools when imported."""

from mathia.tools.connectors import help  # noqa: F401
