"""The tool router's added latency per call, and the offline parser's throughput.

In one process on uvloop, with a private Redis (``redis-server`` on a free loopback port) and
a SQLite database in a temporary folder, the router calls a registered test tool through
:func:`mathia.tools.router.invoke`, one call after another:

- **cached**: a read-only tool whose result is in Redis (every call after the first hits);
- **uncached**: the same tool with new arguments each call (a miss: the handler runs and the
  result is written to the cache);
- **uncached, access not pre-checked**: as above, with no ``room_access`` in the context, so the
  router makes the room access query itself (what an MCP call without a cached check costs).

A cache hit is one Redis round trip (the rate limit, the cache read and the hit's audit entry
are one script); a miss is two (the script, then the cache write and the audit entry in one
pipeline). The floor printed first is one ``PING`` round trip timed the same way: on a shared
machine its tail is the scheduler's, and no call can do better.

Each context is new (as for a new answer), with the room access the runner checked before
answering, as ``runner.py`` passes it. The added latency is the call's wall time minus the
handler's own time (measured inside the handler), so it is what the router costs: validation,
permission check, the rate-limit-and-cache script, the cache write on a miss, and the audit
``XADD``. The CPU column is the process's CPU time per call (the router and its Redis client,
handler included, which is a few microseconds): unlike wall time it does not depend on what
else the machine runs. Audit entries are moved to the database at the end (not timed per call; the flush
rate is printed).

The parser's throughput is :func:`mathia.tools.parser.parse_intent` (and ``parse_slash``) over a
mix of requests for each family, near-misses and plain chat, on one core.

    .venv/bin/python bench/router.py                 # 5,000 calls per case
    .venv/bin/python bench/router.py --calls 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHED_P99_TARGET_MS = 2.0

REQUESTS = [
    "@mathia what's the weather in Nairobi?",
    "how's the weather in London today",
    "is it raining in Paris, FR",
    "Nairobi weather",
    "convert 100 usd to kes",
    "how much is 50 euros in dollars?",
    "what's the exchange rate from EUR to GBP",
    "$20 in kes",
    "send a gif of a dancing cat",
    "show me a cat gif",
    "what can you do?",
    "help",
    "nice weather today",
    "the weather was terrible yesterday",
    "convert the file to pdf",
    "I love that gif",
    "help me write an email",
    "@mathia what did we decide about the launch?",
    "can you summarise this thread for Ada and Bob please",
    "lunch at 1?",
]
SLASH_LINES = ["/weather Nairobi", "/fx 100 usd kes", "/gif happy cat", "/help", "/usr/bin is a path"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def setup(tmp: Path) -> Any:
    from mathia.embedded.redis import start_embedded_redis

    redis = start_embedded_redis(tmp / "redis")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mathia.settings",
            "DATA_DIR": str(tmp / "data"),
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    return redis


def make_team() -> dict[str, Any]:
    from mathia.accounts.models import User
    from mathia.rooms.actions import room_create
    from mathia.rooms.models import Room
    from mathia.workspaces.actions import workspace_create

    ada = User.objects.create_user(email="ada@bench.invalid", password="a-long-passphrase-42", display_name="Ada")

    workspace = workspace_create(owner=ada, name="Bench")
    room = room_create(user=ada, workspace_slug=workspace.slug, name="general", kind="public")
    return {"ada": ada, "workspace": workspace, "room": Room.objects.get(pk=room.pk)}


async def measure(calls: int) -> dict[str, Any]:
    from channels.db import database_sync_to_async
    from pydantic import BaseModel, Field

    from mathia.rooms.access import access_room_for_user
    from mathia.tools import audit
    from mathia.tools.registry import Permission, ToolContext, ToolResult, ToolSpec, registry
    from mathia.tools.router import invoke

    audit.AUTO_FLUSH = False

    class Query(BaseModel):
        q: str = Field(min_length=1, max_length=100)

    handler_ms: list[float] = [0.0]

    async def handler(ctx: ToolContext, args: Query) -> ToolResult:
        started = time.perf_counter()
        result = ToolResult.ok(f"answer to {args.q}", data={"q": args.q, "value": 42})
        handler_ms[0] = (time.perf_counter() - started) * 1000
        return result

    registry.register(
        ToolSpec(
            name="bench_lookup",
            description="bench",
            input_model=Query,
            handler=handler,
            permission=Permission.ROOM_WRITE,
            rate=f"{calls * 10}/s",
            cache_seconds=600,
            cache_scope="global",
        )
    )
    team = await database_sync_to_async(make_team)()
    access = await database_sync_to_async(access_room_for_user)(user=team["ada"], room_id=team["room"].pk)

    def context(checked: bool) -> ToolContext:
        return ToolContext(
            user=team["ada"],
            workspace_id=team["workspace"].pk,
            room_id=team["room"].pk,
            via="model",
            room_access=access if checked else None,
        )

    async def run(case: str, n: int) -> list[float]:
        added = []
        for i in range(n):
            arguments = {"q": "the same question"} if case == "cached" else {"q": f"{case} question {i}"}
            ctx = context(case != "uncached_no_access")
            handler_ms[0] = 0.0
            started = time.perf_counter()
            result = await invoke("bench_lookup", arguments, ctx=ctx)
            total = (time.perf_counter() - started) * 1000
            assert result.is_ok, result
            assert result.cached == (case == "cached" and i > 0) or case != "cached" or i == 0, result
            added.append(total - handler_ms[0])
        return added

    from mathia.core.redis import get_async_redis

    client = get_async_redis()
    figures: dict[str, Any] = {}
    # The floor on this machine now: one Redis round trip, timed the same way.
    for _ in range(300):
        await client.ping()
    pings = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.ping()
        pings.append((time.perf_counter() - started) * 1000)
    figures["ping"] = pings
    for case in ("cached", "uncached", "uncached_no_access"):
        await run(case + "_warmup" if case != "cached" else case, 300)  # warm: connections, scripts, code
        cpu = time.process_time()
        added = await run(case, calls)
        figures[case + "_cpu_us"] = (time.process_time() - cpu) / calls * 1e6
        if case == "cached":
            added = added[1:]
        figures[case] = added
    started = time.perf_counter()
    rows = await database_sync_to_async(audit.audit_flush)()
    figures["flush"] = (rows, time.perf_counter() - started)
    return figures


def parser_throughput(seconds: float = 2.0) -> dict[str, float]:
    from mathia.tools.parser import parse_intent, parse_slash

    for text in REQUESTS:  # compile the tables
        parse_intent(text)
    out = {}
    for name, func, texts in (("parse_intent", parse_intent, REQUESTS), ("parse_slash", parse_slash, SLASH_LINES)):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for text in texts:
                func(text)
            count += len(texts)
        elapsed = time.perf_counter() - started
        out[name] = count / elapsed
    per_call = []
    for text in REQUESTS:
        started = time.perf_counter()
        for _ in range(200):
            parse_intent(text)
        per_call.append((time.perf_counter() - started) / 200 * 1e6)
    out["slowest_request_us"] = max(per_call)
    out["median_request_us"] = statistics.median(per_call)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mathia-bench-router-") as tmp:
        redis = setup(Path(tmp))
        try:
            import uvloop

            figures = uvloop.run(measure(args.calls))
            parsing = parser_throughput()
        finally:
            redis.stop()
    print(f"router added latency per call ({args.calls} sequential calls per case, handler time subtracted)")
    print(f"{'case':<40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU µs':>8}")
    labels = {
        "ping": "(floor: one Redis PING round trip)",
        "cached": "cached (hit)",
        "uncached": "uncached (miss, result written to cache)",
        "uncached_no_access": "uncached, room access queried",
    }
    for case, label in labels.items():
        values = figures[case]
        cpu = figures.get(case + "_cpu_us")
        cpu_text = f"{cpu:>8.0f}" if cpu is not None else f"{'':>8}"
        print(f"{label:<40} {pct(values, 0.5):>8.3f} {pct(values, 0.99):>8.3f} {max(values):>8.3f} {cpu_text}")
    rows, seconds = figures["flush"]
    print(f"audit flush: {rows} entries to the database in {seconds:.2f} s ({rows / seconds:,.0f}/s)")
    print(
        f"parser: parse_intent {parsing['parse_intent']:,.0f} requests/s "
        f"(median {parsing['median_request_us']:.0f} µs, slowest request {parsing['slowest_request_us']:.0f} µs); "
        f"parse_slash {parsing['parse_slash']:,.0f} lines/s"
    )
    p99 = pct(figures["cached"], 0.99)
    verdict = "met" if p99 < CACHED_P99_TARGET_MS else "NOT met"
    print(f"target: p99 added latency of a cached call under {CACHED_P99_TARGET_MS:g} ms: {verdict} ({p99:.3f} ms)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
