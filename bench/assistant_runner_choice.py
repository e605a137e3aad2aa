"""Where answers run: an asyncio task on the web process's loop vs a Celery task per answer.

Measures, on this machine:

(a) ``apply_async`` of a trivial task to its start in a real Celery worker (the project's
    app, ``mathia.celery``; prefork pool, concurrency 2, as ``make run`` starts it; broker:
    a private Redis), p50/p99 over ``--sends`` sequential sends;
(b) ``loop.call_soon_threadsafe`` + ``create_task`` from another thread (what
    ``mathia.assistant.runner.start_answer`` does from the thread that committed the
    question) to the task's first line, on a uvloop loop, p50/p99;
(c) how many 2-second answers each holds at once: 10 Celery tasks that ``time.sleep(2)``
    on that worker vs 10 (and 1,000) asyncio tasks that ``await asyncio.sleep(2)``: the
    queueing delay of each, plus the RSS of the worker's processes.

    .venv/bin/python bench/assistant_runner_choice.py
    .venv/bin/python bench/assistant_runner_choice.py --sends 50 --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench.fanout import _children, _rss_kib  # noqa: E402
from mathia.embedded.redis import start_embedded_redis  # noqa: E402

CONCURRENCY = 2
HOLD_SECONDS = 2.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _rss_of(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pss_of(pid: int) -> int:
    """Proportional set size: shared pages (the forked pool shares the parent's) split among sharers."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


# --- Celery -----------------------------------------------------------------------------


class Celery:
    """A worker subprocess on the private broker, and this process's client of it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mathia",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(CONCURRENCY),
                "--loglevel",
                "WARNING",
                "--include",
                "bench.runner_choice_tasks",
                "--hostname",
                f"bench-runner-choice-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the banner
        )
        import redis

        from bench import runner_choice_tasks

        self.tasks = runner_choice_tasks
        self.redis = redis.Redis.from_url(env["REDIS_URL"])  # no socket timeout: BLPOP waits long
        self.key = runner_choice_tasks.results_key()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("the Celery worker exited at start-up")
            self.tasks.probe.apply_async(args=("ready", time.time()))
            if self.redis.blpop([self.key], timeout=1):
                # Both pool processes answer once before anything is measured.
                for _ in range(4 * CONCURRENCY):
                    self.tasks.probe.apply_async(args=("warm", time.time()))
                    self.redis.blpop([self.key], timeout=10)
                time.sleep(1.0)
                self.redis.delete(self.key)  # late answers to the "ready" probes
                return
        raise SystemExit("the Celery worker did not start")

    def start_latency(self, sends: int) -> tuple[list[float], list[float]]:
        """Sequential sends: ms from just before ``apply_async`` to the task's first line."""
        latencies, call_ms = [], []
        for _ in range(sends):
            token = uuid.uuid4().hex
            sent = time.time()
            self.tasks.probe.apply_async(args=(token, sent))
            call_ms.append((time.time() - sent) * 1000)
            record = self._next(token)
            latencies.append((record["started_at"] - record["sent_at"]) * 1000)
            time.sleep(0.01)
        return latencies, call_ms

    def hold_many(self, count: int) -> list[dict[str, float]]:
        sent = time.time()
        for number in range(count):
            self.tasks.hold.apply_async(args=(f"hold-{number}", sent, HOLD_SECONDS))
        records = [self._next("hold-") for _ in range(count)]
        return sorted(records, key=lambda r: r["started_at"])

    def _next(self, token: str) -> dict[str, Any]:
        """The next record whose token starts with ``token`` (others are stale)."""
        while True:
            item = self.redis.blpop([self.key], timeout=HOLD_SECONDS * 10 + 30)
            if item is None:
                raise SystemExit("a task never reported")
            record: dict[str, Any] = json.loads(item[1])
            if record["token"].startswith(token):
                return record

    def rss(self) -> list[tuple[str, int, int]]:
        """(process, RSS KiB, PSS KiB) of the worker's main process and each pool process."""
        main = self.proc.pid
        pids = [("main (consumer)", main)] + [(f"pool process {pid}", pid) for pid in _children(main)]
        return [(name, _rss_of(pid), _pss_of(pid)) for name, pid in pids]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- asyncio ----------------------------------------------------------------------------


class LoopThread:
    """A uvloop event loop in a thread: the web process's loop, seen from a worker thread."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-loop", daemon=True)
        self.thread.start()
        self.tasks: set[asyncio.Task[Any]] = set()

    def schedule(self, coro_fn: Any, *args: Any) -> None:
        """What ``start_answer`` does: hop onto the loop, create the task there."""

        def spawn() -> None:
            task = self.loop.create_task(coro_fn(*args))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        self.loop.call_soon_threadsafe(spawn)

    def start_latency(self, sends: int) -> list[float]:
        latencies: list[float] = []
        started = threading.Event()

        async def probe(sent: float) -> None:
            latencies.append((time.perf_counter() - sent) * 1000)
            started.set()

        for _ in range(sends):
            started.clear()
            self.schedule(probe, time.perf_counter())
            started.wait(10)
            time.sleep(0.001)
        return latencies

    def hold_many(self, count: int) -> list[dict[str, float]]:
        records: list[dict[str, float]] = []
        done = threading.Event()

        async def hold(sent: float) -> None:
            started = time.time()
            await asyncio.sleep(HOLD_SECONDS)
            records.append({"sent_at": sent, "started_at": started, "finished_at": time.time()})
            if len(records) == count:
                done.set()

        sent = time.time()
        for _ in range(count):
            self.schedule(hold, sent)
        done.wait(HOLD_SECONDS + 60)
        return sorted(records, key=lambda r: r["started_at"])

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_stops: list[Any] = []  # what to stop on a signal, in order


def _shutdown(signum: int, _frame: Any) -> None:
    for stop in _stops:
        with contextlib.suppress(Exception):
            stop()
    print(f"\nstopped by signal {signum}; worker and Redis stopped", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=200, help="sequential sends for the start latency")
    parser.add_argument("--quick", action="store_true", help="fewer asyncio samples")
    args = parser.parse_args()
    # On SIGTERM (a timeout, CI) or Ctrl-C, stop the worker and Redis at once, even mid-cleanup.
    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    data_dir = Path(tempfile.mkdtemp(prefix="mathia-runner-choice-"))
    redis = start_embedded_redis(data_dir / "redis")
    _stops.append(redis.stop)
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "REDIS_URL": redis.url,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "mathia.settings",
    }
    os.environ.update({k: env[k] for k in ("DATA_DIR", "REDIS_URL", "LOG_LEVEL", "DJANGO_SETTINGS_MODULE")})
    import django

    django.setup()
    celery: Celery | None = None
    loop = LoopThread()
    print(f"where answers run: {os.cpu_count()} CPUs, Celery prefork concurrency {CONCURRENCY}, uvloop", flush=True)
    try:
        celery = Celery(env)
        _stops.insert(0, celery.stop)
        celery.wait_ready()
        rss_idle = celery.rss()
        celery_lat, call_ms = celery.start_latency(args.sends)
        loop_lat = loop.start_latency(args.sends * (1 if args.quick else 10))
        print("\n(a)/(b) scheduling latency: from the call to the task's first line")
        print("| runner | samples | p50 | p99 | max |")
        print("| --- | --- | --- | --- | --- |")
        for name, values in (
            ("Celery: apply_async -> task starts in a prefork worker", celery_lat),
            ("asyncio: call_soon_threadsafe + create_task -> task starts", loop_lat),
        ):
            print(
                f"| {name} | {len(values)} | {pct(values, 0.5):.3f} ms | {pct(values, 0.99):.3f} ms | "
                f"{max(values):.3f} ms |"
            )
        print(f"(the apply_async call itself: p50 {pct(call_ms, 0.5):.2f} ms, p99 {pct(call_ms, 0.99):.2f} ms)")

        print(f"\n(c) 10 answers of {HOLD_SECONDS:g} s sent at once: when each starts (queueing delay) and ends")
        celery_hold = celery.hold_many(10)
        rss_busy = celery.rss()
        loop_hold = loop.hold_many(10)
        print("| answer | Celery, 2 processes: starts after | ends after | asyncio: starts after | ends after |")
        print("| --- | --- | --- | --- | --- |")
        for number, (c, a) in enumerate(zip(celery_hold, loop_hold, strict=True), start=1):
            print(
                f"| {number} | {c['started_at'] - c['sent_at']:.3f} s | {c['finished_at'] - c['sent_at']:.3f} s | "
                f"{(a['started_at'] - a['sent_at']) * 1000:.2f} ms | {a['finished_at'] - a['sent_at']:.3f} s |"
            )
        many = 1000
        rss0 = _rss_kib(os.getpid())
        loop_many = loop.hold_many(many)
        rss1 = _rss_kib(os.getpid())
        print(
            f"asyncio, {many} at once: the last starts after "
            f"{(loop_many[-1]['started_at'] - loop_many[-1]['sent_at']) * 1000:.1f} ms, all done after "
            f"{max(r['finished_at'] - r['sent_at'] for r in loop_many):.3f} s "
            f"(this process grew {(rss1 - rss0) / 1024:.1f} MiB; a real answer adds its HTTP stream and text)"
        )
        print("\nMemory of the Celery worker's processes (idle after warm-up / while holding answers)")
        print("| process | RSS idle | RSS busy | PSS busy |")
        print("| --- | --- | --- | --- |")
        busy = {name: (rss, pss) for name, rss, pss in rss_busy}
        for name, rss, _ in rss_idle:
            b_rss, b_pss = busy.get(name, (0, 0))
            print(f"| {name} | {rss / 1024:.1f} MiB | {b_rss / 1024:.1f} MiB | {b_pss / 1024:.1f} MiB |")
        pool = [(rss, pss) for name, rss, pss in rss_busy if name.startswith("pool")]
        n = max(1, len(pool))
        total_rss, total_pss = sum(r for _, r, _ in rss_busy) / 1024, sum(p for _, _, p in rss_busy) / 1024
        print(
            f"each pool process holds one answer at a time: RSS {sum(r for r, _ in pool) / n / 1024:.0f} MiB "
            f"(PSS {sum(p for _, p in pool) / n / 1024:.0f} MiB) per concurrent answer; the whole worker "
            f"RSS {total_rss:.0f} MiB (PSS {total_pss:.0f} MiB) for {CONCURRENCY} concurrent answers"
        )
    finally:
        loop.stop()
        if celery is not None:
            celery.stop()
        redis.stop()


if __name__ == "__main__":
    main()
