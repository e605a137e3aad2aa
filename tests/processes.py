"""Real processes for tests: a Celery worker started as `make run` and production start it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from mathia.celery import app as celery_app

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_process_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that must share this run's backends."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="mathia.test_settings",
        TEST_REDIS_URL=settings.TEST_BACKENDS.redis_url,
        MATHIA_TEST_REDIS_PREFIX=settings.TEST_RUN_REDIS_PREFIX,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Ask a child to stop (SIGTERM), and kill it if it has not within 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def celery_worker(*, startup_timeout: float = 30.0, database: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process on this run's broker; yields once it answers a ping.

    ``database``: on this test's database (from ``django_db(transaction=True)`` tests).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mathia", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h", "--without-mingle", "--without-gossip"],
        cwd=PROJECT_ROOT,
        env=test_process_env(**(_database_env() if database else {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + startup_timeout
        while not celery_app.control.ping(timeout=0.5):
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"celery worker exited with {process.returncode}:\n{output}")
            if time.monotonic() > deadline:
                raise TimeoutError("celery worker did not answer a ping in time")
        yield process
    finally:
        stop_process(process)


@contextmanager
def running_server(*, startup_timeout: float = 30.0, env: dict[str, str] | None = None) -> Iterator[str]:
    """Mathia under uvicorn, as production runs it, on this test's database and Redis.

    Use from ``django_db(transaction=True)`` tests, so the server sees committed rows.
    Yields the base URL. ``env`` adds environment variables (settings) for the server.
    """
    with server_process(startup_timeout=startup_timeout, env=env) as (base, _):
        yield base


@contextmanager
def server_process(
    *, startup_timeout: float = 30.0, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`running_server`, yielding the process too (to kill it)."""
    import urllib.request

    from mathia.embedded.redis import free_port

    port = free_port()
    # The test's own Redis prefix, so the test reads what the server wrote (and cleans it up).
    child_env = test_process_env(**_database_env(), MATHIA_TEST_REDIS_PREFIX=settings.REDIS_KEY_PREFIX, **(env or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "mathia.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log", "--log-level", "warning",
         "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "65536"],
        cwd=PROJECT_ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise RuntimeError(f"server exited with {process.returncode}:\n{output}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError("server did not start") from None
                time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            stop_process(process)


def _database_env() -> dict[str, str]:
    """Point a child process at this test's database."""
    from django.db import connection

    return {
        "MATHIA_TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        "TEST_DATABASE_URL": os.environ.get("TEST_DATABASE_URL", "") or _database_url_for_child(),
    }


def _database_url_for_child() -> str:
    """The parent's database as a TEST_DATABASE_URL, so the child picks the same engine."""
    from django.db import connection

    if connection.vendor == "sqlite":
        return "sqlite"
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
