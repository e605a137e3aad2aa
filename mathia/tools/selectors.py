"""Reads for the tool router's adapters."""

from __future__ import annotations

from typing import Any

from mathia.tools.registry import registry


def slash_command_list() -> list[dict[str, Any]]:
    """The registered slash commands, as the composer's completion shows them."""
    return [
        {
            "name": command.name,
            "usage": command.usage or f"/{command.name}",
            "description": command.description,
            "examples": list(command.examples),
        }
        for command in registry.slash_commands()
    ]
