"""@mathia's streamed answers: time to first token added by Mathia, frames, CPU per stream.

Starts Mathia as production does (``bench/fanout.py``'s helpers: uvicorn workers, private
Redis, PostgreSQL when one answers on 127.0.0.1) with the Anthropic provider pointed at the
fake Anthropic server (``mathia.testing.fake_llm``) in its own process, streaming ``--tokens``
tokens at ``--rate`` tokens/s. K rooms each have an asker and ``--members - 1`` more members
connected by WebSocket; each asker asks ``@mathia`` in its room, waits for the answer to end
and asks again, so about K answers stream at once (starts spread over one answer's duration).

Per answer, the added time to first token is (the asker's socket receives the first
``message.stream`` frame) - (the asker sent the question) - (the fake provider's own time
to first token, request received to first token sent, read from its ``GET /stats``).
Every member must receive contiguous chunks and the final ``message.updated`` with status
``done`` and the full text; any that does not counts as incomplete. K rises step by step
until the p99 added time to first token reaches 50 ms (from 50 streams on; ``--keep-going``
runs every step). Meanwhile, in five more rooms where nobody asks, one member each sends plain
messages twice a second: their round trip (send to the sender's own ``message.new``) is the
chat's own latency under the same load, a floor for an answer's first frame.

    .venv/bin/python bench/ai_stream.py                          # K = 10, 25, 50, 100, 200, 300...
    .venv/bin/python bench/ai_stream.py --streams 10,50,100,300 --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import uvloop  # noqa: E402
import websockets  # noqa: E402

from bench import fanout  # noqa: E402
from bench.fanout import Client, Load, _cpu_seconds, _wait_http, _wait_idle, prepare_mathia, start_mathia, stop  # noqa: E402
from mathia.embedded.redis import free_port, start_embedded_redis  # noqa: E402

TTFT_TARGET_AT_50_MS = 10.0  # p99 added time to first token with 50 streams
TTFT_LIMIT_MS = 50.0  # the search: most streams with p99 under this
STREAMS_TARGET = 300
PROBE_ROOMS = 5  # rooms apart from the answers', where one member sends plain messages during each step
DEFAULT_STREAMS = "10,25,50,100,200,300,400,500"
QUICK_STREAMS = "10,50,100"
WORDS = ["the", "launch", "moved", "to", "March", "because", "the", "review", "found", "two", "open", "issues"]


def answer_text(tokens: int) -> str:
    """``tokens`` word-sized tokens, as the fake server splits them (each keeps its leading space)."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(tokens))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- processes -----------------------------------------------------------------------------


def _own_database() -> str | None:
    """Like ``fanout._bench_database``, under another name, so a fan-out run does not drop ours."""
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2) as c:
            c.execute("DROP DATABASE IF EXISTS mathia_bench_ai WITH (FORCE)")
            c.execute("CREATE DATABASE mathia_bench_ai")
        return "postgres://postgres@127.0.0.1:5432/mathia_bench_ai"
    except Exception:
        return None


def start_fake_llm(tokens: int, rate: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mathia.testing.fake_llm",
            "--port",
            str(port),
            "--tokens-per-second",
            str(rate),
            "--text",
            answer_text(tokens),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    _wait_http(port, "/stats")
    return proc, port


def _postgres_backends() -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the bench database (others share the server)."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if b"mathia_bench_ai" in cmdline.read_bytes():
                found[int(cmdline.parent.name)] = _cpu_seconds_of(int(cmdline.parent.name))
    return found


def _cpu_seconds_of(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _machine_busy_seconds() -> float:
    """CPU seconds spent on anything but idle, all cores together (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def _wait_quiet(limit: float = 120.0) -> None:
    """Wait (up to ``limit`` s) until the machine is nearly idle: other work on it skews every figure."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy0 = _machine_busy_seconds()
        await asyncio.sleep(1.0)
        if _machine_busy_seconds() - busy0 < 0.15:
            return
    print("         (the machine stayed busy: other processes share the CPU during this step)", flush=True)


def fake_stats(port: int, since: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats?since={since}", timeout=30) as response:
        return json.loads(response.read())["requests"]


# --- the load ------------------------------------------------------------------------------


@dataclass
class Question:
    tag: str
    room: int
    asker: Client
    sent_at: float = 0.0
    message_id: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    timed_out: bool = False


@dataclass
class View:
    """One member's view of one answer."""

    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_chunk: int = 0
    disorder: int = 0  # chunks that were not the previous one plus one
    parts: list[str] = field(default_factory=list)
    final_status: str | None = None
    final_body: str | None = None
    final_at: float | None = None


@dataclass
class StepResult:
    streams: int
    answers: int = 0
    added_ms: list[float] = field(default_factory=list)
    before_provider_ms: list[float] = field(default_factory=list)
    after_first_token_ms: list[float] = field(default_factory=list)
    provider_ms: list[float] = field(default_factory=list)
    fps: list[float] = field(default_factory=list)
    frames_per_answer: list[float] = field(default_factory=list)
    stream_seconds: float = 0.0
    incomplete: int = 0
    unmatched: int = 0
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    client_lag_ms: list[float] = field(default_factory=list)
    #: Plain messages (no @mathia) sent during the step: send to the sender's own message.new.
    probe_ms: list[float] = field(default_factory=list)
    probe_ack_ms: list[float] = field(default_factory=list)  # the same messages, send to the sender's ack
    probes_lost: int = 0  # plain messages whose sender never got its message.new
    timings: list[dict[str, Any]] = field(default_factory=list)  # per answer, for --dump

    @property
    def p99(self) -> float:
        return pct(self.added_ms, 0.99)

    @property
    def healthy(self) -> bool:
        return self.incomplete == 0 and self.unmatched == 0 and self.p99 < TTFT_LIMIT_MS


class StreamLoad(Load):
    """``fanout.Load``'s clients, reading answers instead of fan-out marks."""

    def __init__(self, port: int, clients: int, room_of: list[int], cookies: list[str]) -> None:
        super().__init__("mathia", port, clients, room_of, cookies)
        self.by_tag: dict[str, Question] = {}
        self.current: dict[int, Question] = {}  # room -> the question being answered there
        self.question_of_answer: dict[int, int] = {}  # answer message id -> question message id
        self.views: dict[int, dict[int, View]] = {}  # answer message id -> client index -> view
        self.probes: dict[str, tuple[float, Client]] = {}  # a plain message's client id -> sent at, by whom
        self.probe_ms: list[float] = []
        self.probe_ack_ms: list[float] = []

    def _view(self, answer_id: int, client: Client) -> View:
        views = self.views.setdefault(answer_id, {})
        view = views.get(client.index)
        if view is None:
            view = views[client.index] = View()
        return view

    async def receive(self, client: Client) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in client.ws:
                now = time.time()
                frame = json.loads(text)
                kind = frame["type"]
                if kind == "message.stream":
                    view = self._view(frame["message_id"], client)
                    if view.first_at is None:
                        view.first_at = now
                    view.last_at = now
                    view.frames += 1
                    if frame["chunk"] != view.last_chunk + 1:
                        view.disorder += 1
                    view.last_chunk = frame["chunk"]
                    view.parts.append(frame["delta"])
                elif kind in ("message.new", "message.updated"):
                    self._message(client, frame["message"], now)
                elif kind == "ack" and "message" in frame:
                    probe = self.probes.get(frame["message"].get("client_id", ""))
                    if probe is not None:
                        self.probe_ack_ms.append((now - probe[0]) * 1000)
                    question = self.by_tag.get(frame["message"].get("client_id", ""))
                    if question is not None:
                        question.message_id = frame["message"]["id"]

    def _message(self, client: Client, message: dict[str, Any], now: float) -> None:
        if not message["author"]["assistant"]:
            probe = self.probes.get(message.get("client_id") or "")
            if probe is not None and probe[1] is client:  # the sender's own copy
                del self.probes[message["client_id"]]
                self.probe_ms.append((now - probe[0]) * 1000)
            question = self.by_tag.get(message.get("client_id") or "")
            if question is not None:
                question.message_id = message["id"]
            return
        reply_to = (message.get("reply_to") or {}).get("id")
        if reply_to is not None:
            self.question_of_answer[message["id"]] = reply_to
        if message["status"] == "streaming":
            self._view(message["id"], client)
            return
        view = self._view(message["id"], client)
        view.final_status, view.final_body, view.final_at = message["status"], message["body"], now
        question = self.current.get(message["room_id"])
        if question is not None and client is question.asker and question.message_id in (None, reply_to):
            question.done.set()

    async def ask(self, room: int, rounds: int, offset: float, step: int, out: list[Question]) -> None:
        asker = self.members[room][0]
        await asyncio.sleep(offset)
        for number in range(rounds):
            tag = f"{self.run_token}-{step}-{room}-{number}"
            question = Question(tag=tag, room=room, asker=asker)
            self.by_tag[tag] = question
            self.current[room] = question
            out.append(question)
            frame = {"type": "send", "room_id": room, "client_id": tag, "body": f"@mathia bench question {tag}"}
            question.sent_at = time.time()
            await asker.ws.send(json.dumps(frame))
            try:
                await asyncio.wait_for(question.done.wait(), 60)
            except TimeoutError:
                question.timed_out = True
                return  # the room's answer is stuck; asking again would overlap it

    async def probe(self, room: int, step: int, stop_at: asyncio.Event) -> None:
        """A member of a room where nobody asks sends plain messages: the chat's own round trip.

        Twice a second; the time runs from the send to that member's own ``message.new``,
        which has gone through the database, the outbox, Redis and the room's delivery, as an
        answer's first frame does. The rooms are apart from the answers' rooms, so no prompt
        reads these messages.
        """
        member = self.members[room][0]
        for number in itertools.count():
            if stop_at.is_set():
                return
            tag = f"{self.run_token}-probe-{step}-{room}-{number}"
            self.probes[tag] = (time.time(), member)
            await member.ws.send(
                json.dumps({"type": "send", "room_id": room, "client_id": tag, "body": f"probe {tag}"})
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_at.wait(), 0.5)


async def _loop_lag(samples: list[float], stop_at: asyncio.Event) -> None:
    """How late this (client) process's event loop wakes up: the clients' own share of latency."""
    loop = asyncio.get_running_loop()
    while not stop_at.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        samples.append((loop.time() - before - 0.01) * 1000)


async def run_step(
    load: StreamLoad,
    k: int,
    *,
    step: int,
    rounds: int,
    answer_seconds: float,
    text: str,
    fake_port: int,
    pids: dict[str, int],
    probe_rooms: list[int],
    py_spy: str | None = None,
) -> StepResult:
    rooms = list(load.members)[:k]
    profiler = None
    if py_spy:  # sample the uvicorn processes holding the GIL (their Python CPU): collapsed stacks per step
        out = Path(tempfile.gettempdir()) / f"ai_stream-k{k}-{os.getpid()}.txt"
        profiler = subprocess.Popen(
            [
                *(py_spy, "record", "--pid", str(pids["mathia"]), "--subprocesses", "--rate", "250", "--gil"),
                *("--nonblocking", "--format", "raw", "--output", str(out)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    result = StepResult(streams=k)
    questions: list[Question] = []
    since = len(await asyncio.to_thread(fake_stats, fake_port, 0))
    cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    cpu0["machine"] = _machine_busy_seconds()
    backends0 = _postgres_backends()
    client0 = time.process_time()
    lag_stop = asyncio.Event()
    lag = asyncio.ensure_future(_loop_lag(result.client_lag_ms, lag_stop))
    probe_stop = asyncio.Event()
    probes = [asyncio.ensure_future(load.probe(room, step, probe_stop)) for room in probe_rooms]
    load.probe_ms, load.probe_ack_ms = result.probe_ms, result.probe_ack_ms
    t0 = time.perf_counter()
    try:
        await asyncio.gather(
            *(load.ask(room, rounds, random.uniform(0, answer_seconds), step, questions) for room in rooms)
        )
    finally:
        probe_stop.set()  # no probe after the last question
    await asyncio.sleep(1.0)  # the other members' last frames
    result.wall = time.perf_counter() - t0
    lag_stop.set()
    await asyncio.gather(lag, *probes)
    result.probes_lost = len(load.probes)
    load.probes.clear()
    result.cpu = {name: (_cpu_seconds(pid) - cpu0[name]) for name, pid in pids.items()}
    result.cpu["postgres"] = sum(cpu - backends0.get(pid, 0.0) for pid, cpu in _postgres_backends().items())
    result.cpu["machine"] = _machine_busy_seconds() - cpu0["machine"]
    result.cpu["clients"] = time.process_time() - client0
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        await asyncio.to_thread(profiler.wait, 30)
        print(f"         py-spy samples: {out}", flush=True)
    served = await asyncio.to_thread(fake_stats, fake_port, since)
    provider = {}
    for record in served:
        tag = record["last_user_text"].rsplit(" ", 1)[-1]
        provider[tag] = record
    answer_of = {question_id: answer_id for answer_id, question_id in load.question_of_answer.items()}
    for question in questions:
        result.answers += 1
        answer_id = answer_of.get(question.message_id or -1)
        record = provider.get(question.tag)
        if answer_id is None or record is None or record["first_token_at"] is None:
            result.unmatched += 1
            result.failures.append(f"{question.tag}: no answer or no provider request")
            continue
        views = load.views.get(answer_id, {})
        asker_view = views.get(question.asker.index)
        ok = True
        for member in load.members[question.room]:
            view = views.get(member.index)
            why = _incomplete(view, text)
            if why:
                ok = False
                result.failures.append(f"{question.tag} member {member.index}: {why}")
                continue
            assert view is not None
            assert view.first_at is not None
            assert view.final_at is not None
            # The stream lasts from its first frame to the final message.updated.
            if view.final_at > view.first_at:
                result.fps.append(view.frames / (view.final_at - view.first_at))
            result.frames_per_answer.append(view.frames)
        if not ok:
            result.incomplete += 1
        if asker_view is None or asker_view.first_at is None:
            continue
        provider_s = record["first_token_at"] - record["received_at"]
        total_s = asker_view.first_at - question.sent_at
        result.provider_ms.append(provider_s * 1000)
        result.added_ms.append((total_s - provider_s) * 1000)
        result.before_provider_ms.append((record["received_at"] - question.sent_at) * 1000)
        result.after_first_token_ms.append((asker_view.first_at - record["first_token_at"]) * 1000)
        result.timings.append(
            {
                "streams": k,
                "tag": question.tag,
                "question_id": question.message_id,
                "answer_id": answer_id,
                "sent_at": question.sent_at,
                "provider_received_at": record["received_at"],
                "provider_first_token_at": record["first_token_at"],
                "asker_first_frame_at": asker_view.first_at,
                "asker_final_at": asker_view.final_at,
            }
        )
        if asker_view.final_at is not None:
            result.stream_seconds += asker_view.final_at - question.sent_at
    # Forget this step's state: the next step reuses the rooms.
    load.by_tag.clear()
    load.current.clear()
    load.question_of_answer.clear()
    load.views.clear()
    return result


def _incomplete(view: View | None, text: str) -> str | None:
    if view is None:
        return "nothing received"
    if view.final_status is None:
        return "no final message.updated"
    if view.final_status != "done":
        return f"final status {view.final_status}: {(view.final_body or '')[:80]!r}"
    if view.final_body != text:
        return "final text differs"
    if view.frames == 0:
        return "no message.stream frame"
    if view.disorder:
        return f"{view.disorder} chunk(s) out of sequence"
    if "".join(view.parts) != text:
        return "streamed text differs"
    return None


def report(r: StepResult, cores: int) -> None:
    cpu_per_stream = r.cpu["mathia"] / r.stream_seconds * 100 if r.stream_seconds else float("nan")
    share = {name: seconds / r.wall * 100 for name, seconds in r.cpu.items()}
    print(
        f"  K={r.streams:<4} answers {r.answers:>4}  added TTFT p50 {pct(r.added_ms, 0.5):6.1f} ms "
        f"p99 {r.p99:7.1f} ms  (before provider p50 {pct(r.before_provider_ms, 0.5):.1f}/p99 "
        f"{pct(r.before_provider_ms, 0.99):.1f} ms; after first token p50 {pct(r.after_first_token_ms, 0.5):.1f}/p99 "
        f"{pct(r.after_first_token_ms, 0.99):.1f} ms; provider's own p50 {pct(r.provider_ms, 0.5):.2f}/p99 "
        f"{pct(r.provider_ms, 0.99):.2f} ms)",
        flush=True,
    )
    mean_fps = sum(r.fps) / len(r.fps) if r.fps else float("nan")
    mean_frames = sum(r.frames_per_answer) / len(r.frames_per_answer) if r.frames_per_answer else float("nan")
    print(
        f"         frames/s per stream {mean_fps:5.1f} (min {min(r.fps, default=float('nan')):.1f}, "
        f"{mean_frames:.0f} frames/answer)  CPU per stream {cpu_per_stream:5.2f}% of a core  "
        f"CPU of {cores * 100}%: Mathia {share['mathia']:.0f}%, fake provider {share['provider']:.0f}%, "
        f"Redis {share['redis']:.0f}%, PostgreSQL {share['postgres']:.0f}%, clients {share['clients']:.0f}%; "
        f"other processes {share['machine'] - sum(v for n, v in share.items() if n != 'machine'):.0f}%  "
        f"client loop lag p99 "
        f"{pct(r.client_lag_ms, 0.99):.1f} ms  incomplete {r.incomplete}  unmatched {r.unmatched}",
        flush=True,
    )
    print(
        f"         plain message round trip (send to own message.new, {len(r.probe_ms)} messages, "
        f"{r.probes_lost} unanswered): p50 {pct(r.probe_ms, 0.5):.1f} ms p99 {pct(r.probe_ms, 0.99):.1f} ms "
        f"(to the ack: p50 {pct(r.probe_ack_ms, 0.5):.1f} ms p99 {pct(r.probe_ack_ms, 0.99):.1f} ms)",
        flush=True,
    )
    for failure in r.failures[:5]:
        print(f"         ! {failure}", flush=True)


async def drive(
    args: argparse.Namespace, port: int, pids: dict[str, int], fake_port: int, setup: fanout.MathiaSetup
) -> list[StepResult]:
    steps = [int(s) for s in args.streams.split(",")]
    max_k = max(steps)
    total = len(setup.rooms)  # the answers' max_k rooms, then the probes'
    probe_rooms = setup.rooms[max_k:]
    room_of = [setup.rooms[i % total] for i in range(total * args.members)]
    load = StreamLoad(port, total * args.members, room_of, setup.cookies)
    by_room: dict[int, list[Client]] = {}
    for client in load.clients:
        by_room.setdefault(room_of[client.index], []).append(client)
    text = answer_text(args.tokens)
    answer_seconds = args.tokens / args.rate
    connected = 0
    results = []
    try:
        # Warm-up, not counted: each worker's first answer imports the SDK and opens connections.
        warm_k = min(steps[0], 10)
        await load.connect([c for room in [*setup.rooms[:warm_k], *probe_rooms] for c in by_room[room]])
        connected = warm_k
        await _wait_idle(pids["mathia"])
        warm = await run_step(
            load,
            warm_k,
            step=-1,
            rounds=2,
            answer_seconds=answer_seconds,
            text=text,
            fake_port=fake_port,
            pids=pids,
            probe_rooms=probe_rooms,
        )
        print(
            f"  warm-up (not counted): {warm.answers} answers, added TTFT max {max(warm.added_ms, default=0):.0f} ms "
            f"(the first answers of each worker), incomplete {warm.incomplete + warm.unmatched}",
            flush=True,
        )
        await _wait_idle(pids["mathia"])
        for number, k in enumerate(steps):
            if k > connected:  # connect the rooms this step adds, then let the connect storm settle
                await load.connect([c for room in setup.rooms[connected:k] for c in by_room[room]])
                connected = k
                await _wait_idle(pids["mathia"])
            await _wait_quiet()
            rounds = max(args.min_rounds, math.ceil(args.min_answers / k))
            result = await run_step(
                load,
                k,
                step=number,
                rounds=rounds,
                answer_seconds=answer_seconds,
                text=text,
                fake_port=fake_port,
                pids=pids,
                probe_rooms=probe_rooms,
                py_spy=args.py_spy,
            )
            results.append(result)
            report(result, os.cpu_count() or 1)
            if args.dump:
                with open(args.dump, "a") as dump:
                    dump.writelines(json.dumps(t) + "\n" for t in result.timings)
            saturated = result.p99 > 10_000 or result.incomplete + result.unmatched > result.answers // 5
            if (not result.healthy and k >= 50 and not args.keep_going) or saturated:
                break  # past the limit: larger steps only queue more
            await _wait_idle(pids["mathia"])
            await _wait_quiet()
    finally:
        await load.close()
    return results


_children_to_stop: list[subprocess.Popen[bytes]] = []
_stops: list[Any] = []


def _shutdown(signum: int, _frame: Any) -> None:
    for proc in reversed(_children_to_stop):
        with contextlib.suppress(Exception):
            stop(proc)
    for stop_other in _stops:
        with contextlib.suppress(Exception):
            stop_other()
    print(f"\nstopped by signal {signum}; servers stopped", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default=None, help=f"concurrent answers per step (default {DEFAULT_STREAMS})")
    parser.add_argument("--quick", action="store_true", help=f"steps {QUICK_STREAMS}, fewer answers per step")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per answer")
    parser.add_argument("--rate", type=float, default=50.0, help="the provider's tokens per second")
    parser.add_argument("--members", type=int, default=3, help="connected members per room, the asker included")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes for Mathia (the Dockerfile runs 2)")
    parser.add_argument("--min-answers", type=int, default=None, help="answers per step at least (default 200)")
    parser.add_argument("--min-rounds", type=int, default=2, help="questions per room per step at least")
    parser.add_argument("--flush-ms", type=int, default=None, help="Mathia's ASSISTANT_FLUSH_MS (default 40)")
    parser.add_argument("--keep-going", action="store_true", help="run every step, past the first failing one")
    parser.add_argument("--dump", default=None, help="append per-answer timings (JSON lines) to this file")
    parser.add_argument("--py-spy", default=None, help="path to py-spy: profile Mathia's processes during each step")
    args = parser.parse_args()
    args.streams = args.streams or (QUICK_STREAMS if args.quick else DEFAULT_STREAMS)
    args.min_answers = args.min_answers or (60 if args.quick else 200)
    # On SIGTERM (a timeout, CI) or Ctrl-C, stop every child at once and leave: waiting for
    # asyncio.run to cancel a thousand sockets' tasks first can hang, orphaning the servers.
    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    uvloop.install()
    data_dir = Path(tempfile.mkdtemp(prefix="mathia-ai-stream-"))
    max_k = max(int(s) for s in args.streams.split(","))
    procs = _children_to_stop
    redis = start_embedded_redis(data_dir / "redis")
    _stops.append(redis.stop)
    try:
        fake, fake_port = start_fake_llm(args.tokens, args.rate)
        procs.append(fake)
        fanout._bench_database = _own_database  # type: ignore[assignment]
        rooms = max_k + PROBE_ROOMS
        setup = prepare_mathia(rooms * args.members, rooms, redis.url, data_dir)
        setup.env.update(
            {
                "LLM_PROVIDERS": "anthropic",
                "ANTHROPIC_API_KEY": "bench-key",
                "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}",
                "ANTHROPIC_MODEL": "claude-bench",
                "ASSISTANT_MAX_PER_USER": "1000",
                "ASSISTANT_MAX_PER_WORKSPACE": "100000",
                "ASSISTANT_MAX_TOTAL": "100000",
            }
        )
        if args.flush_ms:
            setup.env["ASSISTANT_FLUSH_MS"] = str(args.flush_ms)
        mathia, port = start_mathia(setup, "pubsub", args.workers)
        procs.append(mathia)
        print(
            f"@mathia streaming benchmark: {args.tokens} tokens at {args.rate:g} tokens/s "
            f"({args.tokens / args.rate:g} s per answer), {args.members} members per room, "
            f"{args.workers} uvicorn workers, {os.cpu_count()} CPUs, database "
            f"{'PostgreSQL' if 'DATABASE_URL' in setup.env else 'SQLite'}",
            flush=True,
        )
        pids = {"mathia": mathia.pid, "provider": fake.pid, "redis": redis.process.pid}
        results = asyncio.run(drive(args, port, pids, fake_port, setup))
        summarize(results)
    finally:
        for proc in reversed(procs):
            stop(proc)
        redis.stop()


def summarize(results: list[StepResult]) -> None:
    print("\n== summary")
    print(
        "| streams | answers | added TTFT p50 | p99 | plain message p50 / p99 | frames/s per stream | CPU per stream "
        "| Mathia CPU | lost |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        mean_fps = sum(r.fps) / len(r.fps) if r.fps else float("nan")
        cpu_per_stream = r.cpu["mathia"] / r.stream_seconds * 100 if r.stream_seconds else float("nan")
        print(
            f"| {r.streams} | {r.answers} | {pct(r.added_ms, 0.5):.1f} ms | {r.p99:.1f} ms | "
            f"{pct(r.probe_ms, 0.5):.1f} / {pct(r.probe_ms, 0.99):.1f} ms | {mean_fps:.1f} | "
            f"{cpu_per_stream:.2f}% | {r.cpu['mathia'] / r.wall * 100:.0f}% | {r.incomplete + r.unmatched} |"
        )
    at_50 = next((r for r in results if r.streams == 50), None)
    if at_50 is None:
        print("target p99 added TTFT <= 10 ms at 50 streams: not measured (no step of 50)")
    else:
        verdict = "PASS" if at_50.p99 <= TTFT_TARGET_AT_50_MS and at_50.incomplete + at_50.unmatched == 0 else "FAIL"
        print(f"target p99 added TTFT <= {TTFT_TARGET_AT_50_MS:g} ms at 50 streams: {verdict} ({at_50.p99:.1f} ms)")
    healthy = [r.streams for r in results if r.healthy]
    best = max(healthy, default=0)
    verdict = "PASS" if best >= STREAMS_TARGET else "FAIL"
    print(
        f"target >= {STREAMS_TARGET} concurrent streams with p99 added TTFT < {TTFT_LIMIT_MS:g} ms and nothing lost: "
        f"{verdict} (most: {best or 'none'})"
    )


if __name__ == "__main__":
    main()
