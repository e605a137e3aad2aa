"""Fake Anthropic and OpenAI-compatible servers, for tests and benchmarks.

:class:`FakeLLMServer` runs a small ASGI app with uvicorn in a background thread on
127.0.0.1. It speaks the two wire formats the official SDKs expect:

- ``POST /v1/messages``: Anthropic Messages streaming (``message_start``,
  ``content_block_start``, ``ping``, ``content_block_delta``, ``content_block_stop``,
  ``message_delta``, ``message_stop``; ``event: error`` frames; JSON error bodies).
- ``POST /v1/chat/completions``: OpenAI Chat Completions streaming (``data:`` chunks of
  ``chat.completion.chunk``, a final usage chunk when ``stream_options.include_usage``
  is set, then ``data: [DONE]``).
- ``GET /stats``: each request's arrival and first-token wall-clock times, so a benchmark
  in another process can subtract the server's own time to first token.

Tool use is streamed as each API documents it: Anthropic ``tool_use`` content blocks (opened
with empty ``input``, then ``input_json_delta`` pieces starting with an empty one, ``stop_reason:
"tool_use"``); OpenAI ``tool_calls`` deltas (a tool-only answer opens with ``role``, ``content:
null`` and the first call's id and name, then ``arguments`` pieces by ``index``,
``finish_reason: "tool_calls"``). :func:`tool_results` reads back the results a client sent in
its next request, and ``Reply(respond=...)`` builds a reply from that request, so a test can
script a whole tool-calling loop.

Every answer is described by a :class:`Reply`: the text and its pace, tool calls, usage,
or a failure (an HTTP error, a cut connection, a malformed or error event, a stall).
A test queues replies with :meth:`FakeLLMServer.enqueue`; requests that find the queue
empty get :attr:`FakeLLMServer.default`. Each request is recorded (parsed body, headers,
and whether the client went away before the answer was complete).

Streams are paced with ``asyncio.sleep`` on the server's one event loop, so hundreds of
concurrent streams cost no threads::

    with FakeLLMServer() as server:
        server.enqueue(Reply(status=429, retry_after=1), Reply(text="Hello there"))
        client = anthropic.AsyncAnthropic(api_key="k", base_url=server.anthropic_url)
        ...
        assert server.requests[-1].body["messages"][0]["content"] == "Hi"
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn

Api = Literal["anthropic", "openai"]
FakeFinish = Literal["end", "max_tokens", "tool_use"]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_TEXT = "This is the fake model answering."
ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
STATS_PATH = "/stats"  # GET: per-request timings (see FakeLLMServer._stats)

_ROUTES: dict[str, Api] = {ANTHROPIC_PATH: "anthropic", OPENAI_PATH: "openai"}
_ANTHROPIC_STOP_REASONS: dict[FakeFinish, str] = {"end": "end_turn", "max_tokens": "max_tokens", "tool_use": "tool_use"}
_OPENAI_FINISH_REASONS: dict[FakeFinish, str] = {"end": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes; ``id`` is generated when left empty."""

    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass(frozen=True)
class Reply:
    """How the fake server answers one request.

    The fields that take a count (``cut_after``, ``end_after``, ``stall_after``,
    ``unknown_event_after``, ``malformed_after``, ``error_event_after``) act once that many text tokens were
    sent; a count past the last token acts after the text, before the closing events.
    """

    text: str = DEFAULT_TEXT
    #: The text already split into tokens; by default ``text`` is split at word starts.
    tokens: tuple[str, ...] | None = None
    #: Pace of the text tokens; ``None`` sends them as fast as the socket takes them.
    tokens_per_second: float | None = None
    #: Seconds to wait before the response headers.
    initial_delay: float = 0.0
    tool_calls: tuple[FakeToolCall, ...] = ()
    input_tokens: int = 12
    #: Defaults to the number of text tokens.
    output_tokens: int | None = None
    #: Defaults to ``"tool_use"`` when there are tool calls, else ``"end"``.
    finish: FakeFinish | None = None
    #: OpenAI only: send the usage chunk when the client asks for it.
    send_usage: bool = True
    #: Answer "Echo: <last user message>" instead of ``text``.
    echo: bool = False
    #: Build the reply from the request body (the parsed JSON), e.g. to answer with the tool
    #: results the client fed back (see :func:`tool_results`).
    respond: Callable[[dict[str, Any]], Reply] | None = None

    # --- failures ------------------------------------------------------------------------
    #: An HTTP error status, answered with the JSON error body the API documents.
    status: int = 200
    #: ``Retry-After`` header (seconds) sent with an error status.
    retry_after: float | None = None
    #: Never send the response headers (until the client gives up or the server stops).
    hang: bool = False
    #: Stop sending after this many tokens, keeping the connection open.
    stall_after: int | None = None
    #: Close the connection after this many tokens, mid-body.
    cut_after: int | None = None
    #: End the body cleanly after this many tokens, without the closing events.
    end_after: int | None = None
    #: Send an event that cannot be parsed (``"json"``), has the wrong shape (``"shape"``), or
    #: a ``data:`` line that never ends (``"endless"``: 4 MiB, then the connection stays open).
    malformed_after: int | None = None
    malformed: Literal["json", "shape", "endless"] = "json"
    #: Send an event the client should skip: an unknown Anthropic event type, or an OpenAI
    #: chunk with no choices (as Azure sends with ``prompt_filter_results``).
    unknown_event_after: int | None = None
    #: Send an in-stream error event (Anthropic ``event: error``; OpenAI ``data: {"error": ...}``) and end.
    error_event_after: int | None = None
    error_type: str = "overloaded_error"
    #: OpenAI only: after ``data: [DONE]``, keep the body open (sending nothing) instead of ending it.
    hold_open_after_done: bool = False

    def text_tokens(self) -> list[str]:
        if self.tokens is not None:
            return list(self.tokens)
        return split_tokens(self.text)


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into word-sized tokens (each keeps its leading whitespace) that join back to it."""
    tokens = re.findall(r"\s*\S+", text)
    rest = text[len("".join(tokens)) :]
    if rest:
        tokens.append(rest)
    return tokens


@dataclass
class RecordedRequest:
    """One request the fake server received. Written by the server thread, read by tests."""

    api: Api
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    reply: Reply
    #: The answer was sent in full.
    completed: bool = False
    #: The client went away before the answer was complete.
    disconnected: bool = False
    received_at: float = field(default_factory=time.monotonic)
    #: Wall-clock (``time.time()``) times, comparable across processes: the request arrived,
    #: and the first text token was handed to the socket. Benchmarks read them at ``GET /stats``.
    received_wall: float = field(default_factory=time.time)
    first_token_wall: float | None = None

    @property
    def api_key(self) -> str | None:
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


class _Stop(Exception):
    """Raised inside a response to end it early (the failure already happened)."""


class FakeLLMServer:
    """A fake Anthropic + OpenAI-compatible server on 127.0.0.1 (on a free port unless ``port`` is given).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. ``require_key``
    makes every request with another key fail with 401 (whose body, as a worst case for
    leak tests, repeats the key it was sent).
    """

    def __init__(self, *, default: Reply | None = None, require_key: str | None = None, port: int = 0) -> None:
        self.default: Reply = default or Reply()
        self.require_key = require_key
        self.requests: list[RecordedRequest] = []
        self._queue: deque[tuple[Api | None, Reply]] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: set[asyncio.Event] = set()
        self._port = port

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
            backlog=4096,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-llm-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        server, thread, loop = self._server, self._thread, self._loop
        if server is None or thread is None:
            return
        if loop is not None and not loop.is_closed():
            # Let hanging and stalled responses end, so shutdown does not wait for them.
            loop.call_soon_threadsafe(self._release_waiting)
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)
        self._server = self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:53211``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def anthropic_url(self) -> str:
        """``base_url`` for ``anthropic.AsyncAnthropic``, which appends ``/v1/messages``."""
        return self.url

    @property
    def openai_url(self) -> str:
        """``base_url`` for ``openai.AsyncOpenAI``, which appends ``/chat/completions``."""
        return f"{self.url}/v1"

    # --- scripting ---------------------------------------------------------------------
    def enqueue(self, *replies: Reply, api: Api | None = None) -> None:
        """Answer the next requests (of ``api`` only, if given) with ``replies``, in order."""
        with self._lock:
            self._queue.extend((api, reply) for reply in replies)

    def reset(self, *, default: Reply | None = None) -> None:
        """Forget queued replies and recorded requests; set a new default."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = default or Reply()

    @property
    def pending(self) -> int:
        """How many queued replies no request has taken yet."""
        with self._lock:
            return len(self._queue)

    def requests_for(self, api: Api) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.api == api]

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float = 2.0) -> bool:
        """Poll ``predicate`` (e.g. ``lambda: request.disconnected``) until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def _next_reply(self, api: Api) -> Reply:
        with self._lock:
            for index, (wanted, reply) in enumerate(self._queue):
                if wanted is None or wanted == api:
                    del self._queue[index]
                    return reply
            return self.default

    # --- ASGI --------------------------------------------------------------------------
    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self._loop = asyncio.get_running_loop()
        arrived = time.time()
        raw = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        if path == STATS_PATH and scope["method"] == "GET":
            await _send_json(send, 200, self._stats(scope.get("query_string", b"")))
            return
        api = _ROUTES.get(path)
        if api is None or scope["method"] != "POST":
            await _send_json(send, 404, {"error": {"type": "not_found_error", "message": f"No route {path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            await _send_json(send, 400, _error_body(api, 400, "The request body is not a JSON object."))
            return

        reply = self._next_reply(api)
        if reply.respond is not None:
            reply = reply.respond(body)
        if reply.echo:
            reply = replace(reply, text=f"Echo: {_last_user_text(body)}", tokens=None)
        record = RecordedRequest(api=api, path=path, headers=headers, body=body, reply=reply, received_wall=arrived)
        if self.require_key is not None and record.api_key != self.require_key:
            record.reply = reply = Reply(status=401)
        self.requests.append(record)

        disconnected = asyncio.Event()
        self._waiting.add(disconnected)
        watcher = asyncio.create_task(self._watch_disconnect(receive, record, disconnected))
        try:
            response = _Response(api, record, reply, send, disconnected, request_number=next(self._ids))
            await response.run()
        except _Stop:
            pass
        finally:
            watcher.cancel()
            self._waiting.discard(disconnected)

    async def _watch_disconnect(self, receive: Receive, record: RecordedRequest, event: asyncio.Event) -> None:
        # Once the body is read, uvicorn's receive() returns only when the client goes away
        # or the response is complete.
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not record.completed:
                    record.disconnected = True
                event.set()
                return

    def _stats(self, query: bytes) -> dict[str, Any]:
        """Timings of the requests from number ``since`` on (``GET /stats?since=N``), for a benchmark.

        The server's own time to first token is ``first_token_at - received_at`` (wall clock).
        """
        match = re.search(rb"(?:^|&)since=(\d+)", query)
        since = int(match.group(1)) if match else 0
        records = list(self.requests)[since:]
        return {
            "since": since,
            "requests": [
                {
                    "received_at": r.received_wall,
                    "first_token_at": r.first_token_wall,
                    "completed": r.completed,
                    "disconnected": r.disconnected,
                    "last_user_text": _last_user_text(r.body)[-200:],
                }
                for r in records
            ],
        }

    def _release_waiting(self) -> None:
        for event in list(self._waiting):
            event.set()


class _Response:
    """Writes one scripted answer in the format of ``api``."""

    def __init__(
        self,
        api: Api,
        record: RecordedRequest,
        reply: Reply,
        send: Send,
        gone: asyncio.Event,
        *,
        request_number: int,
    ) -> None:
        self.api = api
        self.record = record
        self.reply = reply
        self.send = send
        self.gone = gone
        self.request_id = f"req_fake_{request_number:06d}"
        self.tokens = reply.text_tokens()
        self.include_usage = bool((record.body.get("stream_options") or {}).get("include_usage"))
        self.model = str(record.body.get("model") or "fake-model")

    async def run(self) -> None:
        reply = self.reply
        if reply.hang:
            await self.gone.wait()
            raise _Stop
        if reply.initial_delay:
            await self._sleep(reply.initial_delay)
        if reply.status != 200:
            await self._send_error()
            return
        if not self.record.body.get("stream"):
            await _send_json(self.send, 400, _error_body(self.api, 400, "The fake server only streams."))
            return
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (self._request_id_header(), self.request_id.encode()),
                ],
            }
        )
        if self.api == "anthropic":
            await self._anthropic()
        else:
            await self._openai()

    # --- shared steps ------------------------------------------------------------------
    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.gone.is_set():
            raise _Stop

    async def _write(self, data: bytes) -> None:
        if self.gone.is_set():
            raise _Stop
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def _finish(self) -> None:
        self.record.completed = True
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _text_tokens(self, write_token: Callable[[str], Awaitable[None]]) -> None:
        """Send the text tokens at the reply's pace, acting on the failure points on the way."""
        pace = self.reply.tokens_per_second
        started = asyncio.get_running_loop().time()
        for sent, token in enumerate(self.tokens):
            await self._checkpoint(sent)
            if pace:
                delay = started + sent / pace - asyncio.get_running_loop().time()
                if delay > 0:
                    await self._sleep(delay)
            await write_token(token)
            if self.record.first_token_wall is None:
                self.record.first_token_wall = time.time()
        await self._checkpoint(len(self.tokens), last=True)

    async def _checkpoint(self, sent: int, *, last: bool = False) -> None:
        reply = self.reply

        def due(after: int | None) -> bool:
            return after is not None and (sent == after or (last and after > sent))

        if due(reply.cut_after):
            # Returning without ending the body makes uvicorn close the connection mid-body.
            raise _Stop
        if due(reply.end_after):
            await self._finish()
            raise _Stop
        if due(reply.stall_after):
            await self.gone.wait()
            raise _Stop
        if due(reply.unknown_event_after):
            await self._write(self._unknown_frame())
        if due(reply.malformed_after):
            if reply.malformed == "endless":
                await self._write(b"data: ")
                for _ in range(64):
                    await self._write(b"x" * 65536)
                await self.gone.wait()
                raise _Stop
            await self._write(self._malformed_frame())
        if due(reply.error_event_after):
            await self._write(self._error_frame())
            await self._finish()
            raise _Stop

    def _finish_reason(self) -> FakeFinish:
        if self.reply.finish is not None:
            return self.reply.finish
        return "tool_use" if self.reply.tool_calls else "end"

    def _output_tokens(self) -> int:
        if self.reply.output_tokens is not None:
            return self.reply.output_tokens
        return max(len(self.tokens), 1)

    def _tool_id(self, index: int, call: FakeToolCall) -> str:
        if call.id:
            return call.id
        prefix = "toolu_fake_" if self.api == "anthropic" else "call_fake_"
        return f"{prefix}{self.request_id[-6:]}_{index}"

    def _request_id_header(self) -> bytes:
        return b"request-id" if self.api == "anthropic" else b"x-request-id"

    async def _send_error(self) -> None:
        reply = self.reply
        headers = [(self._request_id_header(), self.request_id.encode())]
        if reply.retry_after is not None:
            headers.append((b"retry-after", f"{reply.retry_after:g}".encode()))
        message = _error_message(reply.status, self.record.api_key)
        body = _error_body(self.api, reply.status, message)
        if self.api == "anthropic":
            body["request_id"] = self.request_id
        await _send_json(self.send, reply.status, body, headers)

    def _malformed_frame(self) -> bytes:
        if self.api == "anthropic":
            if self.reply.malformed == "json":
                return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'
            return _sse("content_block_delta", {"type": "content_block_delta", "index": 0})
        if self.reply.malformed == "json":
            return b'data: {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [{\n\n'
        return _data({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": self.model})

    def _unknown_frame(self) -> bytes:
        if self.api == "anthropic":
            return _sse("future_event", {"type": "future_event", "detail": "a type this client does not know"})
        chunk = {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []}
        return _data(chunk)

    def _error_frame(self) -> bytes:
        message = "The fake server reports an error mid-stream."
        if self.api == "anthropic":
            return _sse("error", {"type": "error", "error": {"type": self.reply.error_type, "message": message}})
        return _data({"error": {"message": message, "type": self.reply.error_type, "param": None, "code": None}})

    # --- Anthropic ---------------------------------------------------------------------
    async def _anthropic(self) -> None:
        reply = self.reply
        message_id = f"msg_fake_{self.request_id[-6:]}"
        await self._write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": self.model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
                    },
                },
            )
        )
        index = 0
        if self.tokens or not reply.tool_calls:
            await self._write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            )
            await self._write(_sse("ping", {"type": "ping"}))

            async def write_token(token: str) -> None:
                delta = {"type": "text_delta", "text": token}
                await self._write(
                    _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
                )

            await self._text_tokens(write_token)
            await self._write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        else:
            await self._checkpoint(0, last=True)
        for number, call in enumerate(reply.tool_calls):
            block = {"type": "tool_use", "id": self._tool_id(number, call), "name": call.name, "input": {}}
            await self._write(
                _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            )
            # As Anthropic documents it: the block opens with empty input, then an empty partial, then pieces.
            for piece in ["", *_json_pieces(call.arguments)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                await self._write(
                    _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                )
            await self._write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        await self._write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _ANTHROPIC_STOP_REASONS[self._finish_reason()], "stop_sequence": None},
                    "usage": {"output_tokens": self._output_tokens()},
                },
            )
        )
        await self._write(_sse("message_stop", {"type": "message_stop"}))
        await self._finish()

    # --- OpenAI ------------------------------------------------------------------------
    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-fake-{self.request_id[-6:]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return _data(chunk)

    async def _openai(self) -> None:
        reply = self.reply
        tool_only = bool(reply.tool_calls) and not self.tokens
        if not tool_only:
            await self._write(self._chunk({"role": "assistant", "content": "", "refusal": None}))

        async def write_token(token: str) -> None:
            await self._write(self._chunk({"content": token}))

        await self._text_tokens(write_token)
        for number, call in enumerate(reply.tool_calls):
            start = {
                "index": number,
                "id": self._tool_id(number, call),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            if tool_only and number == 0:
                # As OpenAI documents it: a tool-only answer opens with the role, null content and the first call.
                await self._write(
                    self._chunk({"role": "assistant", "content": None, "tool_calls": [start], "refusal": None})
                )
            else:
                await self._write(self._chunk({"tool_calls": [start]}))
            for piece in _json_pieces(call.arguments):
                await self._write(self._chunk({"tool_calls": [{"index": number, "function": {"arguments": piece}}]}))
        await self._write(self._chunk({}, _OPENAI_FINISH_REASONS[self._finish_reason()]))
        if self.include_usage and reply.send_usage:
            usage = {
                "prompt_tokens": reply.input_tokens,
                "completion_tokens": self._output_tokens(),
                "total_tokens": reply.input_tokens + self._output_tokens(),
            }
            await self._write(
                _data(
                    {
                        "id": f"chatcmpl-fake-{self.request_id[-6:]}",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": self.model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        await self._write(b"data: [DONE]\n\n")
        if reply.hold_open_after_done:
            while not self.gone.is_set():  # until the client hangs up
                await asyncio.sleep(0.05)
            raise _Stop
        await self._finish()


# --- wire helpers ----------------------------------------------------------------------
def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _data(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _json_pieces(arguments: dict[str, Any]) -> Iterator[str]:
    """The arguments' JSON in a few pieces, as models stream it."""
    text = json.dumps(arguments)
    step = max(1, len(text) // 3)
    for start in range(0, len(text), step):
        yield text[start : start + step]


def _error_message(status: int, api_key: str | None) -> str:
    if status == 401:
        # Real APIs echo part of a wrong key; this one echoes all of it, so a leak shows.
        return f"Incorrect API key provided: {api_key}."
    if status == 429:
        return "Rate limit reached for requests."
    if status == 529:
        return "Overloaded"
    if status >= 500:
        return "The server had an error while processing your request."
    return "The request is not valid."


def _error_body(api: Api, status: int, message: str) -> dict[str, Any]:
    if api == "anthropic":
        default = "api_error" if status >= 500 else "invalid_request_error"
        return {"type": "error", "error": {"type": _ANTHROPIC_ERROR_TYPES.get(status, default), "message": message}}
    error_type, code = {
        401: ("invalid_request_error", "invalid_api_key"),
        429: ("requests", "rate_limit_exceeded"),
    }.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results a client fed back in a request, in either API's format.

    Each is ``{"id", "content", "is_error"}``: Anthropic ``tool_result`` blocks in user turns,
    OpenAI ``role: "tool"`` messages.
    """
    found: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            found.append({"id": message.get("tool_call_id"), "content": message.get("content"), "is_error": False})
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    value = block.get("content")
                    if isinstance(value, list):
                        value = "".join(p.get("text", "") for p in value if isinstance(p, dict))
                    found.append(
                        {"id": block.get("tool_use_id"), "content": value, "is_error": bool(block.get("is_error"))}
                    )
    return found


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def main(argv: list[str] | None = None) -> None:
    """Serve the fake APIs in the foreground: ``python -m mathia.testing.fake_llm --port 8765``.

    Useful for a benchmark, so that the server's work does not share a process (and a GIL)
    with the clients being measured.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--tokens-per-second", type=float, default=None)
    parser.add_argument("--initial-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        default=Reply(text=args.text, tokens_per_second=args.tokens_per_second, initial_delay=args.initial_delay),
        port=args.port,
    )
    server.start()
    print(f"fake LLM server: anthropic base_url={server.anthropic_url} openai base_url={server.openai_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
