"""The tool router: every action Mathia takes goes through here, once, the same way.

A person (a slash command, or a natural request the offline parser understands), a language
model (tool calling) or an outside agent (the MCP server) asks for a tool by name with JSON
arguments. :func:`mathia.tools.router.invoke` then, in this order:

1. finds the tool (the static registry, then the workspace's dynamic sources, e.g. MCP servers);
2. validates the arguments against the tool's pydantic input model (its JSON schema is what
   models and MCP clients see) and answers ``needs_input`` with a clear message when they are bad;
3. checks the tool's :class:`~mathia.tools.registry.Permission` for ``ctx.user``, the person who
   invoked it: never the author of some text a model read (so a prompt injected into a room
   cannot make Mathia act for someone else). A model that read text the asker did not write
   (other people's messages, or any tool's result) may not call ``sensitive`` tools or tools with
   ``side_effects``: those need the asker's own words (a slash command or a request the parser
   understands);
4. takes one hit of the tool's rate limit and reads its cache, in one atomic Redis script;
5. runs the handler under the tool's timeout (a sync handler runs in a worker thread);
6. caches an ``ok`` result of a ``cache_seconds`` tool, and records an audit entry (who, tool,
   arguments with secrets removed, outcome, latency);
7. returns a :class:`~mathia.tools.registry.ToolResult`: ``ok``, ``error``, ``needs_input`` or
   ``needs_auth``, a message for people and data for the UI and the model. A handler that raised
   or timed out is an ``error``, never ``ok``. A result that holds the asker's private data
   (``ToolSpec.private``, by default a ``sensitive`` tool without side effects, or
   ``ToolResult(private=True)``) is never shown where others read: asked for in a shared room,
   the runner posts it in the asker's private room with Mathia, and the room and the model get a
   note instead.

How a connector adds a tool, a slash command and parser intents (in its app's ``tools.py``,
imported by :meth:`mathia.tools.apps.ToolsConfig.ready` for every installed app)::

    from pydantic import BaseModel, Field

    from mathia.tools.registry import IntentRule, Permission, SlashCommand, ToolContext, ToolResult, ToolSpec, register


    class RemindInput(BaseModel):
        when: str = Field(description="When, e.g. 'tomorrow at 9' or 'in 2 hours'")
        what: str = Field(min_length=1, max_length=500, description="What to remind about")


    async def remind(ctx: ToolContext, args: RemindInput) -> ToolResult:
        ...  # act as ctx.user, in ctx.room_id; call your app's actions (sync ones via ctx.run_sync)
        return ToolResult.ok(f"I'll remind you {args.when}.", data={"id": 12})


    register(
        ToolSpec(
            name="reminder_create",
            description="Remind the asker of something at a time.",
            input_model=RemindInput,
            handler=remind,
            permission=Permission.ROOM_WRITE,
            rate="20/m",
            side_effects=True,
            progress="Setting a reminder…",
        ),
        slash=SlashCommand("remind", usage="/remind <when> <what>", parse=parse_remind_line),
        intents=[IntentRule("reminders", r"remind me (?P<when>.+?) to (?P<what>.+)")],
    )

A slash command's ``parse`` turns the rest of the line into arguments (raise
:class:`~mathia.tools.registry.SlashUsageError` to show the usage); without one, the line goes
to the input model's single string field. An intent rule's named groups become arguments
(through ``build``, which may refuse a match by returning None); only a match of the *whole*
request, whose arguments validate, runs the tool, so write patterns for whole requests and add
``hints`` for the words that should send a near-miss to the model instead. Handlers act as
``ctx.user`` through the app's own access checks and actions, return a ``ToolResult`` (raising
an ``AppError`` is fine too: it becomes an error result with its code and message), and set
``sensitive=True`` when they read the person's private data or act for them.

For an MCP server: :func:`~mathia.tools.router.list_tools` with a ``ToolContext(user=token owner,
workspace_id=..., via="mcp")`` gives the tools that person may call, each with
``spec.json_schema``; :func:`~mathia.tools.router.invoke` calls one, as them, and
``ToolResult.as_dict()`` is the answer. For an MCP client: register a
:class:`~mathia.tools.registry.ToolSource` whose ``tools(workspace_id)`` returns the enabled tools
of the workspace's servers (``input_schema`` from the server, ``source="mcp:<server>"``, names
prefixed to stay unique) with handlers that call the server; they then go through the same
router (permissions, rate limits, audit) and are offered to the model like the built-in ones.

The public surface:

- :mod:`mathia.tools.registry`: :class:`ToolSpec`, :class:`ToolResult`, :class:`ToolStatus`,
  :class:`ToolContext`, :class:`Permission`, :class:`SlashCommand`, :class:`IntentRule`,
  :class:`ToolSource` (tools added at run time, per workspace), :func:`register`,
  :func:`register_source` and :data:`registry`.
- :mod:`mathia.tools.router`: :func:`invoke` (async) and :func:`invoke_sync`, and
  :func:`list_tools` (what a given person may call in a workspace, with JSON schemas: the MCP
  server lists these and the model is offered them).
- :mod:`mathia.tools.parser`: :func:`parse_slash` and :func:`parse_intent`, deterministic and
  offline.
"""
