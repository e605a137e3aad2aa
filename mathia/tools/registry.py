"""What a tool is, what it answers, and where connectors declare theirs.

A connector declares each tool once, as a :class:`ToolSpec`: its name, a description, a pydantic
input model (whose JSON schema models and MCP clients see), the :class:`Permission` it needs, a
rate limit, a cache time for read-only results, a timeout and the handler. Beside it, optionally,
a :class:`SlashCommand` (``/weather <place>``) and :class:`IntentRule` s for the offline parser
("what's the weather in Nairobi"). :func:`register` adds all three at once.

Tools that appear at run time, per workspace (an external MCP server an admin registered), come
from a :class:`ToolSource` added with :func:`register_source`; the router asks the sources for
a name the static registry does not know.

Every handler answers a :class:`ToolResult`: one shape for people, the UI and the model.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from mathia.core.clock import Clock, system_clock
from mathia.core.ratelimit import Rate

if TYPE_CHECKING:
    from mathia.accounts.models import User
    from mathia.assistant.llm.base import ToolSpec as LLMToolSpec
    from mathia.rooms.access import RoomAccess

TOOL_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")  # what Anthropic, OpenAI and MCP all accept
SLASH_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


# --- results ------------------------------------------------------------------------------
class ToolStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    NEEDS_INPUT = "needs_input"  # the arguments are missing or wrong: ask the person
    NEEDS_AUTH = "needs_auth"  # not allowed, or an account/key must be connected first


@dataclass(frozen=True)
class ToolResult:
    """What a tool answers.

    ``message`` is for people (Markdown, short); ``data`` is for the UI and the model (JSON
    values only). ``code`` is a stable machine word for anything but ``ok``: ``invalid_arguments``,
    ``not_configured``, ``forbidden``, ``rate_limited``, ``timeout``, ``upstream``,
    ``upstream_rate_limited``, ``not_found``, ``internal``... ``cached`` says the router served it
    from its cache.
    """

    status: ToolStatus
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    cached: bool = False
    #: This result holds the asker's private data: it must not be shown where others can read it
    #: (the runner sends it to the asker's private room with Mathia instead). Tools whose every
    #: result is private say so once, with ``ToolSpec.private``.
    private: bool = False

    @classmethod
    def ok(cls, message: str, data: dict[str, Any] | None = None, *, private: bool = False) -> ToolResult:
        return cls(ToolStatus.OK, message, data or {}, private=private)

    @classmethod
    def error(cls, message: str, *, code: str = "error", data: dict[str, Any] | None = None) -> ToolResult:
        return cls(ToolStatus.ERROR, message, data or {}, code=code)

    @classmethod
    def needs_input(
        cls, message: str, *, code: str = "invalid_arguments", data: dict[str, Any] | None = None
    ) -> ToolResult:
        return cls(ToolStatus.NEEDS_INPUT, message, data or {}, code=code)

    @classmethod
    def needs_auth(cls, message: str, *, code: str = "forbidden", data: dict[str, Any] | None = None) -> ToolResult:
        return cls(ToolStatus.NEEDS_AUTH, message, data or {}, code=code)

    @property
    def is_ok(self) -> bool:
        return self.status == ToolStatus.OK

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON values (what the MCP server and the UI get)."""
        out: dict[str, Any] = {"status": self.status.value, "message": self.message, "data": self.data}
        if self.code:
            out["code"] = self.code
        if self.cached:
            out["cached"] = True
        if self.private:
            out["private"] = True
        return out


# --- who calls, and what they may do ---------------------------------------------------------
class Permission(StrEnum):
    """What the invoking person must be allowed, checked by the router before the handler runs."""

    WORKSPACE_MEMBER = "workspace_member"  # a member of ctx.workspace_id
    WORKSPACE_ADMIN = "workspace_admin"  # an owner or admin of ctx.workspace_id
    ROOM_READ = "room_read"  # may see ctx.room_id
    ROOM_WRITE = "room_write"  # may post in ctx.room_id
    ROOM_MODERATE = "room_moderate"  # may moderate ctx.room_id


Via = Literal["slash", "intent", "model", "mcp", "api"]


@dataclass
class ToolContext:
    """Who invokes a tool, where, and how. The router runs the handler as ``user``, and only as them.

    ``user`` is always the person who asked (the asker of an @mathia answer, the owner of an MCP
    token), never the author of text a model read. ``untrusted_context`` is set when a model
    that asks for the tool was shown text the asker did not write (other people's messages, or any
    tool result); ``sensitive`` tools and tools with ``side_effects`` then need the asker's own
    words (a slash command, or a request the parser is sure of). ``room_access`` may carry an
    access check already made for ``room_id`` (the runner checks the asker's write access before
    answering), so the router does not repeat it.
    """

    user: User
    workspace_id: int
    room_id: int | None = None
    #: Others can read ``room_id`` (a public room, or members besides the asker and Mathia):
    #: private results are then not shown there.
    shared_room: bool = False
    via: Via = "api"
    run_id: int | None = None
    #: The message that asked (a slash command, a request to @mathia), when there is one.
    trigger_id: int | None = None
    untrusted_context: bool = False
    room_access: RoomAccess | None = None
    clock: Clock = system_clock
    #: Filled by the router: the permissions already checked for this context.
    checked: set[str] = field(default_factory=set, repr=False)

    async def run_sync(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run a sync function (a Django action) in a worker thread, from an async handler."""
        from channels.db import database_sync_to_async

        return await database_sync_to_async(functools.partial(func, *args, **kwargs), thread_sensitive=False)()


Handler = Callable[[ToolContext, Any], Awaitable[ToolResult] | ToolResult]
CacheScope = Literal["global", "workspace", "user"]


class ToolInputError(Exception):
    """Arguments that do not fit a tool's schema; ``problems`` lists ``{"field", "message"}``."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class ToolSpec:
    """One tool. Frozen: register a new spec to change one.

    - ``input_model``: a pydantic model; arguments are validated into an instance of it, which
      the handler receives. Tools from outside (MCP) may give ``input_schema`` (a JSON schema)
      and a ``validator`` instead; their handler then receives the validated dict.
    - ``permission``: checked for ``ctx.user`` before the handler runs.
    - ``rate``: per person and tool, ``"30/m"`` (also ``s``, ``h``; ``"5/10s"``); ``None`` for none.
    - ``cache_seconds``: a read-only tool's ``ok`` results are served from Redis for this long to
      identical arguments; ``cache_scope`` says who shares them (``global`` only for results that
      do not depend on who asks, like the weather).
    - ``timeout``: seconds the handler may take; past it the call is an ``error`` (``timeout``).
    - ``sensitive``: it reads the person's private data or acts for them in a way a stranger's
      words must not trigger; a model that read text the asker did not write (other people's
      messages, a tool's result) may not call it.
    - ``side_effects``: it changes something (never cached, never retried by the router). Like a
      sensitive tool, a model that read text the asker did not write may not call it. Tools from
      outside (MCP) should set it unless the server says the tool is read-only.
    - ``private``: its results hold the asker's private data, so they are never shown in a room
      others can read (the runner sends them to the asker's private room with Mathia). ``None``
      (the default) means: private when the tool is ``sensitive`` without ``side_effects`` (it
      reads the asker's data) or caches its results per person (``cache_scope="user"``). A
      result can also say ``ToolResult(private=True)`` itself.
    - ``secret_fields``: argument names kept out of the audit log (besides names that look secret).
    - ``progress``: the live status line while it runs, a ``str.format`` template over the
      arguments (``"Checking the weather in {place}…"``) or a function of them.
    - ``model_visible``: offered to language models and MCP clients (``help`` is not).
    """

    name: str
    description: str
    handler: Handler
    input_model: type[BaseModel] | None = None
    input_schema: dict[str, Any] | None = None
    validator: Callable[[dict[str, Any]], Any] | None = None
    permission: Permission = Permission.WORKSPACE_MEMBER
    rate: str | None = "30/m"
    cache_seconds: int = 0
    cache_scope: CacheScope = "user"
    timeout: float = 10.0
    sensitive: bool = False
    side_effects: bool = False
    private: bool | None = None
    secret_fields: frozenset[str] = frozenset()
    progress: str | Callable[[Any], str] = ""
    model_visible: bool = True
    title: str = ""
    #: Where the tool comes from: "builtin", an app label, or "mcp:<server>".
    source: str = "builtin"

    def __post_init__(self) -> None:
        if not TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {TOOL_NAME.pattern}")
        if self.input_model is None and self.input_schema is None:
            raise ValueError(f"tool {self.name!r} needs an input_model or an input_schema")
        if self.cache_seconds and self.side_effects:
            raise ValueError(f"tool {self.name!r} has side effects: its results cannot be cached")
        if self.rate is not None:
            Rate.parse(self.rate)
        if self.timeout <= 0:
            raise ValueError(f"tool {self.name!r} needs a positive timeout")

    @functools.cached_property
    def json_schema(self) -> dict[str, Any]:
        """The input's JSON schema (an object), as models and MCP clients see it."""
        if self.input_model is not None:
            schema = self.input_model.model_json_schema()
            schema.pop("title", None)
            return schema
        assert self.input_schema is not None
        return self.input_schema

    @functools.cached_property
    def is_async(self) -> bool:
        handler: Any = self.handler
        while isinstance(handler, functools.partial):
            handler = handler.func
        if inspect.iscoroutinefunction(handler):
            return True
        call = type(handler).__call__ if not inspect.isfunction(handler) else None  # an async __call__
        return inspect.iscoroutinefunction(call)

    @property
    def results_private(self) -> bool:
        if self.private is not None:
            return self.private
        # It reads the asker's data, or its results are cached per person (so they depend on who asks).
        return (self.sensitive and not self.side_effects) or (self.cacheable and self.cache_scope == "user")

    @property
    def needs_own_words(self) -> bool:
        """A model that read text the asker did not write may not call it."""
        return self.sensitive or self.side_effects

    @property
    def cacheable(self) -> bool:
        return self.cache_seconds > 0 and not self.side_effects

    def validate(self, arguments: object) -> Any:
        """The arguments as the handler takes them, or :class:`ToolInputError`."""
        if not isinstance(arguments, dict):
            raise ToolInputError([{"field": "", "message": "The arguments must be a JSON object."}])
        if self.input_model is not None:
            try:
                return self.input_model.model_validate(arguments)
            except ValidationError as exc:
                raise ToolInputError(
                    [
                        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                        for e in exc.errors(include_input=False, include_url=False)
                    ]
                ) from None
        if self.validator is not None:
            return self.validator(arguments)
        required = self.json_schema.get("required") or []
        missing = [name for name in required if name not in arguments]
        if missing:
            raise ToolInputError([{"field": name, "message": "Field required"} for name in missing])
        return arguments

    def progress_text(self, args: Any) -> str:
        """The live status line for a call with ``args`` (validated)."""
        if callable(self.progress):
            return self.progress(args)
        template = self.progress or f"Using {self.title or self.name}…"
        values = args.model_dump() if isinstance(args, BaseModel) else dict(args or {})
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template

    def llm_spec(self) -> LLMToolSpec:
        """The tool as offered to a language model."""
        from mathia.assistant.llm.base import ToolSpec as LLMToolSpec

        return LLMToolSpec(name=self.name, description=self.description, input_schema=self.json_schema)


# --- ways in --------------------------------------------------------------------------------
class SlashUsageError(Exception):
    """Raised by a :class:`SlashCommand` parser when the line does not fit; the message says why."""


@dataclass(frozen=True)
class SlashCommand:
    """``/name rest of line`` in the composer runs ``tool`` with ``parse(rest)`` as its arguments.

    Without ``parse``: an empty line gives ``{}``, and otherwise the whole line goes to the
    input model's one required string field. ``parse`` raises :class:`SlashUsageError` (or
    returns arguments the schema refuses) for a line that does not fit; the person is then
    shown ``usage``. ``usage`` and ``description`` are what the composer's completion shows.
    """

    name: str
    tool: str = ""  # defaults to the tool registered with it
    usage: str = ""
    description: str = ""
    parse: Callable[[str], dict[str, Any]] | None = None
    examples: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not SLASH_NAME.match(self.name):
            raise ValueError(f"slash command {self.name!r} must match {SLASH_NAME.pattern}")


@dataclass(frozen=True)
class IntentRule:
    """A natural request the offline parser turns into a tool call.

    ``patterns`` are regular expressions matched (case-insensitively, whole) against the request
    after normalization (the @mathia mention, greetings, "please" and closing punctuation taken
    off; spaces collapsed). Named groups become arguments, through ``build`` if given (which may
    return None to refuse a match). A full match is *sure*: the tool runs without a model.
    ``hints`` match anywhere: a request that matches a hint but no pattern is *unsure*, and goes
    to the model (or, offline, gets a suggestion). Higher ``priority`` rules are tried first.
    """

    family: str
    patterns: Sequence[str] | str
    tool: str = ""  # defaults to the tool registered with it
    build: Callable[[dict[str, str]], dict[str, Any] | None] | None = None
    hints: Sequence[str] = ()
    priority: int = 0
    #: How the offline assistant suggests the family when unsure ("/weather <place>").
    suggestion: str = ""

    @functools.cached_property
    def compiled(self) -> tuple[re.Pattern[str], ...]:
        patterns = [self.patterns] if isinstance(self.patterns, str) else list(self.patterns)
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)

    @functools.cached_property
    def compiled_hints(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in self.hints)


@runtime_checkable
class ToolSource(Protocol):
    """Tools that exist at run time, per workspace (an external MCP server's, for one).

    ``tools`` lists the tools enabled in ``workspace_id`` (names unique across the registry,
    e.g. prefixed ``mcp_<server>_``); keep it fast (read from the database or a cache, not the
    network). It is synchronous, called in a worker thread: the assistant lists tools while it
    builds the prompt, in the thread that stored the question, so that no thread hop stands
    between the question and the model. Their ``handler`` is called through the router like any other.
    """

    name: str

    def tools(self, workspace_id: int) -> Sequence[ToolSpec]: ...


# --- the registry ---------------------------------------------------------------------------
class Registry:
    """Every tool, slash command and intent rule, and the dynamic sources."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec] = {}
        self._slash: dict[str, SlashCommand] = {}
        self._intents: list[IntentRule] = []
        self._sources: list[ToolSource] = []
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change; the parser recompiles its tables when it moves

    def register(
        self, spec: ToolSpec, *, slash: SlashCommand | None = None, intents: Sequence[IntentRule] = ()
    ) -> ToolSpec:
        """Add (or replace, by name) a tool, with its slash command and intent rules."""
        with self._lock:
            self._tools[spec.name] = spec
            if slash is not None:
                if not slash.tool:
                    slash = _replace(slash, tool=spec.name)
                self._slash[slash.name] = slash
            for rule in intents:
                self._add_intent(rule if rule.tool else _replace(rule, tool=spec.name))
            self.version += 1
        return spec

    def add_slash(self, command: SlashCommand) -> None:
        """A slash command for a tool registered elsewhere."""
        if not command.tool:
            raise ValueError("a slash command registered on its own names its tool")
        with self._lock:
            self._slash[command.name] = command
            self.version += 1

    def add_intent(self, rule: IntentRule) -> None:
        """An intent rule for a tool registered elsewhere."""
        if not rule.tool:
            raise ValueError("an intent rule registered on its own names its tool")
        with self._lock:
            self._add_intent(rule)
            self.version += 1

    def _add_intent(self, rule: IntentRule) -> None:
        self._intents.append(rule)
        self._intents.sort(key=lambda r: -r.priority)

    def add_source(self, source: ToolSource) -> None:
        with self._lock:
            self._sources = [s for s in self._sources if s.name != source.name] + [source]
            self.version += 1

    def remove_source(self, name: str) -> None:
        with self._lock:
            self._sources = [s for s in self._sources if s.name != name]
            self.version += 1

    def unregister_slash(self, name: str) -> None:
        with self._lock:
            self._slash.pop(name, None)
            self.version += 1

    def unregister(self, name: str) -> None:
        """Remove a tool and the slash commands and intents pointing at it (tests, reloads)."""
        with self._lock:
            self._tools.pop(name, None)
            self._slash = {k: v for k, v in self._slash.items() if v.tool != name}
            self._intents = [r for r in self._intents if r.tool != name]
            self.version += 1

    def get(self, name: str) -> ToolSpec | None:
        """A static tool by name (dynamic ones: :func:`mathia.tools.router.resolve`)."""
        return self._tools.get(name)

    def tools(self) -> list[ToolSpec]:
        return list(self._tools.values())

    def slash(self, name: str) -> SlashCommand | None:
        return self._slash.get(name.lower())

    def slash_commands(self) -> list[SlashCommand]:
        return sorted(self._slash.values(), key=lambda c: c.name)

    def intent_rules(self) -> list[IntentRule]:
        return list(self._intents)

    def sources(self) -> list[ToolSource]:
        return list(self._sources)


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


#: The process's registry. Connectors register into it when their ``tools`` module is imported.
registry = Registry()


def register(spec: ToolSpec, *, slash: SlashCommand | None = None, intents: Sequence[IntentRule] = ()) -> ToolSpec:
    """Register ``spec`` (and its slash command and intent rules) in :data:`registry`."""
    return registry.register(spec, slash=slash, intents=intents)


def register_source(source: ToolSource) -> None:
    """Add a source of run-time, per-workspace tools (replacing one of the same name)."""
    registry.add_source(source)
