"""Fan-out: N WebSocket clients, a steady send rate, delivery throughput and latency.

Starts Mathia as production does (uvicorn, Redis channel layer, PostgreSQL when one answers
on 127.0.0.1, else SQLite) with a private Redis, and the Channels-tutorial baseline under
daphne. For each server and scenario it raises the send rate step by step and prints, per
step: deliveries/s, end-to-end latency p50/p99 (stamped by the sender), lost and duplicated
deliveries; then the highest step with p99 under 100 ms and nothing lost, memory per idle
connection, and Mathia's figures as ratios to the baseline.

    .venv/bin/python bench/fanout.py                     # both scenarios, 1,000 clients
    .venv/bin/python bench/fanout.py --clients 200 --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402
import websockets  # noqa: E402

from mathia.embedded.redis import free_port, start_embedded_redis  # noqa: E402

MARK = re.compile(r"bench:(\d+):(\d+\.\d+)")
P99_TARGET_MS = 100.0


@dataclass
class Step:
    rate: float
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return max(0, self.expected - (self.delivered - self.duplicates))

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def deliveries_per_s(self) -> float:
        return (self.delivered - self.duplicates) / self.seconds if self.seconds else 0.0

    @property
    def healthy(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.pct(0.99) < P99_TARGET_MS


# --- servers -----------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    total = 0
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _cpu_seconds(pid: int) -> float:
    total = 0.0
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{candidate}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _wait_http(port: int, path: str = "/healthz", timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # answering
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


@dataclass
class MathiaSetup:
    env: dict[str, str]
    cookies: list[str]
    rooms: list[int]


def prepare_mathia(clients: int, rooms: int, redis_url: str, data_dir: Path) -> MathiaSetup:
    """A bench database with users, one workspace, rooms and signed-in sessions."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "MESSAGE_RATE_LIMIT": "100000/10s",
        "DJANGO_SETTINGS_MODULE": "mathia.settings",
    }
    database_url = _bench_database()
    if database_url:
        env["DATABASE_URL"] = database_url
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = f"""
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore
from django.utils import timezone
from mathia.accounts.models import User
from mathia.rooms.models import Room, RoomMembership
from mathia.workspaces.models import Membership, Workspace
now = timezone.now()  # onboarded: the app (and /ws/) is closed until then
User.objects.bulk_create(
    [User(email=f"bench{{i}}@example.com", display_name=f"Bench {{i}}", onboarded_at=now) for i in range({clients})]
)
users = list(User.objects.filter(email__startswith="bench").order_by("id"))
workspace = Workspace.objects.create(name="Bench", slug="bench", owner=users[0])
Membership.objects.bulk_create([Membership(workspace=workspace, user=u, role="member") for u in users])
rooms = [Room.objects.create(workspace=workspace, name=f"room-{{r}}", kind="public") for r in range({rooms})]
RoomMembership.objects.bulk_create([RoomMembership(room=rooms[i % len(rooms)], user=u) for i, u in enumerate(users)])
cookies = []
for u in users:
    s = SessionStore()
    s[SESSION_KEY] = str(u.pk); s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); cookies.append(s.session_key)
print(json.dumps({{"cookies": cookies, "rooms": [r.pk for r in rooms]}}))
"""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return MathiaSetup(env=env, cookies=data["cookies"], rooms=data["rooms"])


def _bench_database() -> str | None:
    """A fresh PostgreSQL database when PostgreSQL answers on 127.0.0.1, else None (SQLite)."""
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2) as c:
            c.execute("DROP DATABASE IF EXISTS mathia_bench WITH (FORCE)")
            c.execute("CREATE DATABASE mathia_bench")
        return "postgres://postgres@127.0.0.1:5432/mathia_bench"
    except Exception:
        return None


# --- clients -----------------------------------------------------------------------------


class Client:
    def __init__(self, index: int) -> None:
        self.index = index
        self.ws: Any = None
        self.seen: set[int] = set()


class Load:
    """Connects the clients, then sends at a steady rate and records every delivery."""

    def __init__(self, kind: str, port: int, clients: int, room_of: list[Any], cookies: list[str] | None) -> None:
        self.kind = kind
        self.port = port
        self.room_of = room_of
        self.cookies = cookies
        self.clients = [Client(i) for i in range(clients)]
        self.members: dict[Any, list[Client]] = {}
        for client in self.clients:
            self.members.setdefault(room_of[client.index], []).append(client)
        self.step: Step | None = None
        self.tasks: list[asyncio.Future[None]] = []
        self.sent_at: dict[int, float] = {}
        self.next_id = 0
        # Servers share the bench database, and a repeated client_id is (rightly) treated as
        # a retry and not broadcast: every run needs its own ids.
        self.run_token = uuid.uuid4().hex[:8]

    async def connect(self, clients: list[Client] | None = None) -> None:
        sem = asyncio.Semaphore(50)

        async def one(client: Client) -> None:
            # Clients offer permessage-deflate, as browsers do; each server decides.
            async with sem:
                if self.kind == "mathia":
                    url = f"ws://127.0.0.1:{self.port}/ws/"
                    headers = {"Cookie": f"sessionid={self.cookies[client.index]}"}  # type: ignore[index]
                    client.ws = await websockets.connect(
                        url,
                        additional_headers=headers,
                        origin=f"http://127.0.0.1:{self.port}",
                        max_size=2**20,
                        ping_interval=None,
                    )
                    await client.ws.recv()  # hello
                    await client.ws.send(json.dumps({"type": "subscribe", "rooms": [self.room_of[client.index]]}))
                    while json.loads(await client.ws.recv())["type"] != "subscribed":
                        pass
                else:
                    url = f"ws://127.0.0.1:{self.port}/ws/chat/{self.room_of[client.index]}/"
                    client.ws = await websockets.connect(url, max_size=2**20, ping_interval=None, compression="deflate")
                self.tasks.append(asyncio.ensure_future(self.receive(client)))

        await asyncio.gather(*(one(c) for c in (clients if clients is not None else self.clients)))

    async def receive(self, client: Client) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in client.ws:
                now = time.time()
                if self.kind == "mathia" and not text.startswith('{"type":"message.new"'):
                    continue
                match = MARK.search(text)
                step = self.step
                if match is None or step is None:
                    continue
                msg_id = int(match.group(1))
                step.delivered += 1
                if msg_id in client.seen:
                    step.duplicates += 1
                    continue
                client.seen.add(msg_id)
                step.latencies_ms.append((now - float(match.group(2))) * 1000)

    async def run_step(self, rate: float, seconds: float, drain: float) -> Step:
        step = Step(rate=rate)
        self.step = step
        rooms = list(self.members)
        interval = 1.0 / rate
        start = time.perf_counter()
        n = 0
        while (elapsed := time.perf_counter() - start) < seconds:
            room = rooms[n % len(rooms)]
            members = self.members[room]
            sender = members[(n // len(rooms)) % len(members)]
            self.next_id += 1
            body = f"bench:{self.next_id}:{time.time():.6f}"
            if self.kind == "mathia":
                frame = {"type": "send", "room_id": room, "client_id": f"{self.run_token}-{self.next_id}", "body": body}
            else:
                frame = {"message": body}
            await sender.ws.send(json.dumps(frame))
            step.sent += 1
            step.expected += len(members)
            n += 1
            await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
        await asyncio.sleep(drain)
        step.seconds = elapsed
        self.step = None
        return step

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.ws.close()


async def _wait_idle(pid: int, limit: float = 60.0) -> None:
    """Let the server finish the connect storm (presence, subscriptions) before measuring."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cpu0 = _cpu_seconds(pid)
        await asyncio.sleep(1.0)
        if _cpu_seconds(pid) - cpu0 < 0.05:
            return


async def drive(
    kind: str,
    port: int,
    pid: int,
    clients: int,
    room_of: list[Any],
    cookies: list[str] | None,
    rates: list[float],
    seconds: float,
) -> dict[str, Any]:
    load = Load(kind, port, clients, room_of, cookies)
    # Memory per idle connection is the marginal cost: RSS growth from the first half of
    # the clients to all of them. One-time costs of the first connections (database
    # connections per pool thread, caches, thread stacks) stay out of the figure.
    half = clients // 2
    t0 = time.perf_counter()
    await load.connect(load.clients[:half])
    await _wait_idle(pid)
    rss_half = _rss_kib(pid)
    await load.connect(load.clients[half:])
    connect_s = time.perf_counter() - t0
    await _wait_idle(pid)
    per_conn_kib = (_rss_kib(pid) - rss_half) / (clients - half)
    steps = []
    for rate in rates:
        cpu0, client0 = _cpu_seconds(pid), time.process_time()
        step = await load.run_step(rate, seconds, drain=2.0)
        cpu = (_cpu_seconds(pid) - cpu0) / (step.seconds + 2.0)
        client_cpu = (time.process_time() - client0) / (step.seconds + 2.0)
        steps.append(step)
        print(
            f"  {kind:<14} {rate:>6.0f} msg/s  {step.deliveries_per_s:>9,.0f} deliveries/s  "
            f"p50 {step.pct(0.5):>7.1f} ms  p99 {step.pct(0.99):>8.1f} ms  lost {step.lost:>6}  dup {step.duplicates}  "
            f"CPU server {cpu * 100:>3.0f}% clients {client_cpu * 100:>3.0f}%",
            flush=True,
        )
        if step.pct(0.99) > 2000 or step.lost > step.expected * 0.2:
            break  # saturated: further steps only queue more
    await load.close()
    healthy = [s for s in steps if s.healthy]
    best = max(healthy, key=lambda s: s.deliveries_per_s) if healthy else None
    return {"steps": steps, "best": best, "kib_per_conn": per_conn_kib, "connect_s": connect_s}


def start_mathia(
    setup: MathiaSetup, layer: str, workers: int, ws: str = "websockets-sansio"
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**setup.env, "CHANNEL_LAYER": layer}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "mathia.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws-max-size",
            "65536",
            "--ws-per-message-deflate",
            "false",
            "--ws",
            ws,
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
    )
    _wait_http(port)
    return proc, port


def start_baseline(redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "BASELINE_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-v",
            "0",
            "bench.baseline_chat:application",
        ],
        cwd=ROOT,
        env=env,
    )
    _wait_http(port, "/")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per rate step")
    parser.add_argument("--quick", action="store_true", help="fewer rate steps")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes for Mathia (the Dockerfile runs 2)")
    parser.add_argument(
        "--ws",
        default="websockets-sansio",
        help="uvicorn --ws implementation for Mathia (production: websockets-sansio)",
    )
    parser.add_argument("--servers", default="mathia-pubsub,mathia-core,baseline")
    parser.add_argument("--scenarios", default="one-room,100-rooms")
    args = parser.parse_args()
    # On SIGTERM (a timeout, CI) exit through the finally blocks, so no server is orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    uvloop.install()
    data_dir = Path(tempfile.mkdtemp(prefix="mathia-fanout-"))
    redis = start_embedded_redis(data_dir / "redis")
    print(f"fan-out benchmark: {args.clients} clients, {args.seconds:g} s per step, {os.cpu_count()} CPUs", flush=True)
    results: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for scenario in args.scenarios.split(","):
            n_rooms = 1 if scenario == "one-room" else 100
            per_room = args.clients / n_rooms
            # Offered deliveries per second at each step, turned into a message rate.
            if scenario == "one-room":
                targets = [5_000, 10_000, 15_000, 20_000, 30_000, 40_000] if not args.quick else [5_000, 20_000]
            else:  # ten times more sends per delivery: the write path, not fan-out, is the limit
                targets = [1_000, 2_000, 3_000, 5_000] if not args.quick else [1_000, 3_000]
            rates = [t / per_room for t in targets]
            setup = prepare_mathia(args.clients, n_rooms, redis.url, data_dir)
            print(
                f"\n== {scenario}: {n_rooms} room(s), {per_room:g} clients per room "
                f"(database: {'PostgreSQL' if 'DATABASE_URL' in setup.env else 'SQLite'})",
                flush=True,
            )
            for server in args.servers.split(","):
                if server == "baseline":
                    proc, port = start_baseline(redis.url)
                    room_of: list[Any] = [f"r{i % n_rooms}" for i in range(args.clients)]
                    cookies = None
                else:
                    proc, port = start_mathia(setup, server.split("-")[1], args.workers, args.ws)
                    room_of = [setup.rooms[i % n_rooms] for i in range(args.clients)]
                    cookies = setup.cookies
                try:
                    results[(scenario, server)] = asyncio.run(
                        drive(
                            "mathia" if server != "baseline" else "baseline",
                            port,
                            proc.pid,
                            args.clients,
                            room_of,
                            cookies,
                            rates,
                            args.seconds,
                        )
                    )
                finally:
                    stop(proc)
        print("\n== summary (best step with p99 < 100 ms, nothing lost or duplicated)")
        for (scenario, server), result in results.items():
            best = result["best"]
            figures = (
                f"{best.deliveries_per_s:,.0f} deliveries/s, p50 {best.pct(0.5):.1f} ms, p99 {best.pct(0.99):.1f} ms"
                if best
                else "no step met the target"
            )
            base = results.get((scenario, "baseline"), {}).get("best")
            ratio = (
                f", {best.deliveries_per_s / base.deliveries_per_s:.1f}x baseline"
                if best and base and server != "baseline"
                else ""
            )
            peak = max(s.deliveries_per_s for s in result["steps"])
            print(
                f"{scenario:<10} {server:<14} {figures}{ratio}; peak {peak:,.0f}/s; "
                f"{result['kib_per_conn']:.1f} KiB per idle connection; connect {result['connect_s']:.1f} s"
            )
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
