"""``/help``: what Mathia can do, built from the registry (so new connectors appear by themselves)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mathia.tools.registry import (
    IntentRule,
    Permission,
    SlashCommand,
    ToolContext,
    ToolResult,
    ToolSpec,
    register,
    registry,
)


class HelpInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def help_text() -> str:
    lines = [
        "I'm **Mathia**, this team's assistant. Mention `@mathia` in any room, or write to me in your "
        "private room with me.",
        "",
        "Commands (type `/` in the composer to pick one):",
    ]
    for command in registry.slash_commands():
        usage = command.usage or f"/{command.name}"
        lines.append(f"- `{usage}`: {command.description}" if command.description else f"- `{usage}`")
    examples = [rule.suggestion for rule in registry.intent_rules() if rule.suggestion]
    if examples:
        lines += ["", "Or just ask, for example: " + ", ".join(f"“{e}”" for e in dict.fromkeys(examples)) + "."]
    lines += ["", "Press **Stop** to cut an answer short."]
    return "\n".join(lines)


async def show_help(ctx: ToolContext, args: HelpInput) -> ToolResult:
    from mathia.assistant.builtin import model_status_line

    commands = [
        {"name": c.name, "usage": c.usage or f"/{c.name}", "description": c.description}
        for c in registry.slash_commands()
    ]
    return ToolResult.ok(help_text() + "\n\n" + model_status_line(), data={"commands": commands})


register(
    ToolSpec(
        name="help",
        title="help",
        description="List what Mathia can do: its slash commands and the requests it understands.",
        input_model=HelpInput,
        handler=show_help,
        permission=Permission.WORKSPACE_MEMBER,
        rate=None,
        model_visible=False,
        progress="Looking up what I can do…",
    ),
    slash=SlashCommand("help", usage="/help", description="what I can do", parse=lambda rest: {}),
    intents=[
        IntentRule(
            "help",
            [
                r"/?help(?: me)?",
                r"(?:what|which) (?:can you do|are your commands|commands (?:are there|do you (?:know|have)))",
                r"(?:show|list)(?: me)? (?:your |the )?commands",
                r"commands",
                r"how (?:do|can) i use(?: you| this| mathia)?",
                r"what do you do",
            ],
            priority=-10,
        )
    ],
)
