"""10,000 reminders due within one minute, two Celery workers, one killed halfway.

Starts what production starts (``celery -A mathia beat`` with the project's schedule, and two
``celery -A mathia worker`` processes, prefork) on a fresh PostgreSQL database (SQLite when
PostgreSQL does not answer) and a private Redis. Sets ``--reminders`` reminders for
``--users`` people in ``--rooms`` rooms, due evenly over 60 s starting ``--lead`` seconds
from now, listens on the channel layer for every ``reminder.due`` notification (as the owners'
tabs would), and SIGKILLs one worker (its main process and pool children) at the middle of the
minute. Prints lateness (notification received, and delivery committed, minus due time)
p50/p99/max, duplicates and lost.

    .venv/bin/python bench/reminders.py
    .venv/bin/python bench/reminders.py --reminders 2000 --quick
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
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import _cpu_seconds  # noqa: E402
from mathia.embedded.redis import start_embedded_redis  # noqa: E402

WINDOW = 60.0  # seconds over which the reminders fall due


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _bench_database() -> str | None:
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2) as c:
            c.execute("DROP DATABASE IF EXISTS mathia_bench_reminders WITH (FORCE)")
            c.execute("CREATE DATABASE mathia_bench_reminders")
        return "postgres://postgres@127.0.0.1:5432/mathia_bench_reminders"
    except Exception:
        return None


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    # A session of its own, so the worker and its pool children can be killed together.
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(15)


def _seed(n: int, users: int, rooms: int, first_due: datetime) -> tuple[list[int], dict[int, datetime]]:
    from mathia.accounts.models import User
    from mathia.reminders.models import Reminder
    from mathia.rooms.models import Room, RoomMembership
    from mathia.workspaces.models import Membership, Workspace

    User.objects.bulk_create([User(email=f"bench{i}@example.com", display_name=f"Bench {i}") for i in range(users)])
    people = list(User.objects.filter(email__startswith="bench").order_by("id"))
    workspace = Workspace.objects.create(name="Bench", slug="bench", owner=people[0])
    Membership.objects.bulk_create([Membership(workspace=workspace, user=u, role="member") for u in people])
    room_rows = [Room.objects.create(workspace=workspace, name=f"room-{r}", kind="public") for r in range(rooms)]
    RoomMembership.objects.bulk_create(
        [RoomMembership(room=room_rows[i % rooms], user=u) for i, u in enumerate(people)]
    )
    now = datetime.now(UTC)
    step = WINDOW / n
    rows = [
        Reminder(
            owner=people[i % users],
            workspace=workspace,
            room=room_rows[(i % users) % rooms],
            text=f"task {i}",
            due_at=first_due + timedelta(seconds=i * step),
            timezone="UTC",
            channels=["notify", "message"],
            created_at=now,
            updated_at=now,
        )
        for i in range(n)
    ]
    for start in range(0, n, 2000):
        Reminder.objects.bulk_create(rows[start : start + 2000])
    due = dict(Reminder.objects.values_list("pk", "due_at"))
    return [u.pk for u in people], due


class Listener:
    """Every ``reminder.due`` sent to the owners' tabs, with the time it arrived."""

    def __init__(self, user_ids: list[int]) -> None:
        self.user_ids = user_ids
        self.received: list[tuple[int, float]] = []  # (reminder id, wall time)
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        from channels.layers import get_channel_layer

        from mathia.realtime.events import user_group

        layer = get_channel_layer()
        channel = await layer.new_channel()
        for uid in self.user_ids:
            await layer.group_add(user_group(uid), channel)
        self.ready.set()
        while not self.stop.is_set():
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except TimeoutError:
                continue
            frame = json.loads(message["text"])
            if frame.get("type") == "reminder.due":
                self.received.append((frame["reminder"]["id"], time.time()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--lead", type=float, default=25.0, help="seconds before the first is due")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
    parser.add_argument("--no-kill", action="store_true", help="keep both workers alive")
    parser.add_argument("--quick", action="store_true", help="a shorter lead")
    args = parser.parse_args()
    if args.quick:
        args.lead = 15.0
    data_dir = Path(tempfile.mkdtemp(prefix="mathia-bench-reminders-"))
    redis = start_embedded_redis(data_dir / "redis")
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "REDIS_URL": redis.url,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "mathia.settings",
    }
    database_url = _bench_database()
    if database_url:
        env["DATABASE_URL"] = database_url
    os.environ.update({k: v for k, v in env.items() if k in ("DATA_DIR", "REDIS_URL", "LOG_LEVEL", "DATABASE_URL")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "mathia.settings"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.conf import settings

    first_due = datetime.now(UTC) + timedelta(seconds=args.lead)
    user_ids, due = _seed(args.reminders, args.users, args.rooms, first_due)
    listener = Listener(user_ids)
    listener.thread.start()
    listener.ready.wait(30)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        beat = _start(
            [sys.executable, "-m", "celery", "-A", "mathia", "beat", "--loglevel", "WARNING", "--pidfile", "",
             "--schedule", str(data_dir / "beat-schedule")],
            env, data_dir / "beat.log",
        )  # fmt: skip
        processes.append(beat)
        worker_args = [sys.executable, "-m", "celery", "-A", "mathia", "worker", "--loglevel", "WARNING",
                       "--concurrency", str(args.concurrency), "--without-mingle", "--without-gossip"]  # fmt: skip
        workers = [_start([*worker_args, "--hostname", f"w{i}@%h"], env, data_dir / f"worker{i}.log") for i in range(2)]
        processes.extend(workers)
        kill_at = first_due + timedelta(seconds=WINDOW / 2)
        killed_at = None
        # Wait for every reminder (a late one is late, not lost); give up 4 minutes after the window.
        end = first_due + timedelta(seconds=WINDOW + 240)
        from mathia.reminders.models import Reminder, Status

        cpu = [0.0, 0.0]
        loads: list[float] = []
        while datetime.now(UTC) < end:
            for i, worker in enumerate(workers):
                if worker.poll() is None:
                    cpu[i] = max(cpu[i], _cpu_seconds(worker.pid))  # the worker and its pool process
            loads.append(os.getloadavg()[0])
            if not args.no_kill and killed_at is None and datetime.now(UTC) >= kill_at:
                _kill(workers[0])
                killed_at = datetime.now(UTC)
                print(f"killed worker w0 (pid {workers[0].pid}) at +{(killed_at - first_due).total_seconds():.1f} s")
            if datetime.now(UTC) > first_due + timedelta(seconds=WINDOW) and not (
                Reminder.objects.filter(status=Status.SCHEDULED).exists()
            ):
                print(f"all delivered at +{(datetime.now(UTC) - first_due).total_seconds():.1f} s")
                break
            time.sleep(0.5)
        time.sleep(2)  # the last notifications in flight
    finally:
        listener.stop.set()
        for process in processes:
            _kill(process, signal.SIGTERM if process.poll() is None else signal.SIGKILL)
        redis.stop()
    report(args, due, listener, settings, database_url, cpu=sum(cpu), load=max(loads, default=0.0))


def report(
    args: Any,
    due: dict[int, datetime],
    listener: Listener,
    settings: Any,
    database_url: str | None,
    *,
    cpu: float,
    load: float,
) -> None:
    from mathia.chat.models import Message
    from mathia.reminders.models import Delivery

    deliveries = list(Delivery.objects.values_list("reminder_id", "delivered_at", "worker"))
    delivered = Counter(rid for rid, _, _ in deliveries)
    messages = Counter(
        card["reminder_id"] for card in Message.objects.filter(card__kind="reminder").values_list("card", flat=True)
    )
    heard = Counter(rid for rid, _ in listener.received)
    first_heard: dict[int, float] = {}
    for rid, at in listener.received:
        first_heard.setdefault(rid, at)
    committed_late = [(at - due[rid]).total_seconds() for rid, at, _ in deliveries]
    heard_late = [at - due[rid].timestamp() for rid, at in first_heard.items()]
    workers = Counter(w for _, _, w in deliveries)  # host:pid of the pool process
    lost = [rid for rid in due if rid not in delivered]
    print(
        f"\nreminders bench: {args.reminders} reminders due over {WINDOW:.0f} s, {args.users} people, "
        f"{args.rooms} rooms; 2 Celery workers (prefork, concurrency {args.concurrency})"
        f"{'' if args.no_kill else ', one SIGKILLed halfway'}; beat every {settings.REMINDER_DISPATCH_SECONDS:g} s, "
        f"lease {settings.REMINDER_LEASE_SECONDS:g} s, batch {settings.REMINDER_BATCH}; "
        f"{'PostgreSQL' if database_url else 'SQLite'}; {os.cpu_count()} CPUs"
    )
    print("| lateness | samples | p50 | p99 | max |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in (
        ("notification received", heard_late),
        ("delivery started (in its transaction)", committed_late),
    ):
        print(
            f"| {name} | {len(values)} | {pct(values, 0.5) * 1000:.0f} ms | {pct(values, 0.99) * 1000:.0f} ms "
            f"| {max(values, default=float('nan')) * 1000:.0f} ms |"
        )
    print(f"delivered: {len(delivered)} of {len(due)}; lost: {len(lost)}")
    print(
        f"worker CPU: {cpu:.1f} s in all, {cpu / max(1, len(delivered)) * 1000:.2f} ms per delivery "
        f"(Celery processes only; PostgreSQL's own work not included); highest 1-minute load average "
        f"during the run: {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"duplicates: delivery rows {sum(n - 1 for n in delivered.values() if n > 1)}, "
          f"messages {sum(n - 1 for n in messages.values() if n > 1)}, "
          f"notifications {sum(n - 1 for n in heard.values() if n > 1)}")  # fmt: skip
    print(f"notifications not heard (published after commit, so lost if a worker dies in between): "
          f"{len([rid for rid in delivered if rid not in heard])}")  # fmt: skip
    print(
        f"retried after a lease: {sum(1 for a in _attempts() if a > 1)}; "
        f"deliveries by process: {sorted(workers.values())}"
    )


def _attempts() -> list[int]:
    from mathia.reminders.models import Reminder

    return list(Reminder.objects.values_list("attempts", flat=True))


if __name__ == "__main__":
    main()
