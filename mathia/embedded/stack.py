"""`make run`: the whole of Mathia on one machine, as supervised child processes.

Starts a private Redis (unless REDIS_URL is set), migrates, then runs uvicorn, a Celery
worker and Celery Beat. A child that dies stops the stack with its name and exit code:
nothing is restarted silently. Ctrl-C stops every child this process started.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import IO

import redis

from mathia.core.config import PROJECT_ROOT, ConfigError, MathiaConfig, load_config
from mathia.embedded.redis import EmbeddedRedis, EmbeddedRedisError, start_embedded_redis

PYTHON = sys.executable
STOP_TIMEOUT_SECONDS = 10.0


class StackError(RuntimeError):
    """A reason the stack cannot start, worded for the person who typed `make run`."""


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)


def _say(message: str) -> None:
    print(f"mathia | {message}", flush=True)


def _pump(name: str, stream: IO[bytes]) -> None:
    width = 13
    for raw in iter(stream.readline, b""):
        sys.stdout.write(f"{name:<{width}}| {raw.decode(errors='replace').rstrip()}\n")
        sys.stdout.flush()


class Stack:
    def __init__(self, config: MathiaConfig, environ: dict[str, str]) -> None:
        self.config = config
        self.environ = environ
        self.data_dir = config.DATA_DIR
        self.port = config.PORT
        self.url = f"http://127.0.0.1:{self.port}"
        self.children: list[Child] = []
        self.redis: EmbeddedRedis | None = None
        self._lock_file: IO[str] | None = None
        self._stopping = threading.Event()

    # --- start-up checks --------------------------------------------------------------
    def acquire_lock(self) -> None:
        """One `make run` per data folder: a second one says who holds it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir / "run.lock"
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            handle.close()
            where = f" at {holder['url']}" if "url" in holder else ""
            pid = f" (pid {holder['pid']})" if "pid" in holder else ""
            raise StackError(
                f"Mathia is already running{pid}{where} from {self.data_dir}. "
                "Stop it with Ctrl-C in its terminal, or open the URL it printed."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "url": self.url}))
        handle.flush()
        self._lock_file = handle

    def check_port(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As uvicorn does: connections of a previous run in TIME_WAIT must not count as
            # "in use"; only a program listening on the port does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
                sock.listen(1)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise StackError(
                        f"Port {self.port} is already in use by another program. "
                        f"Stop that program, or choose another port: PORT={self.port + 1} make run"
                    ) from None
                raise StackError(f"Cannot listen on 127.0.0.1:{self.port}: {exc.strerror}") from None

    def start_redis(self) -> None:
        if self.config.REDIS_URL is not None:
            url = self.config.REDIS_URL.get_secret_value()
            try:
                redis.Redis.from_url(url, socket_connect_timeout=2).ping()
            except redis.RedisError as exc:
                raise StackError(
                    f"The Redis at REDIS_URL does not answer ({type(exc).__name__}). "
                    "Start it, or unset REDIS_URL to use a private one."
                ) from None
            _say("using the Redis at REDIS_URL")
            return
        try:
            self.redis = start_embedded_redis(self.data_dir / "redis")
        except EmbeddedRedisError as exc:
            raise StackError(str(exc)) from None
        self.environ["REDIS_URL"] = self.redis.url
        _say(f"private Redis on 127.0.0.1:{self.redis.port} (files in {self.redis.directory})")

    # --- children ---------------------------------------------------------------------
    def run_once(self, name: str, argv: list[str]) -> None:
        _say(f"{name}…")
        result = subprocess.run(argv, env=self.environ, cwd=PROJECT_ROOT, check=False)
        if result.returncode != 0:
            raise StackError(f"`{' '.join(argv[1:])}` failed with exit code {result.returncode} (see above).")

    def spawn(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(
            argv,
            env=self.environ,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order.
        )
        assert process.stdout is not None
        pump = threading.Thread(target=_pump, args=(name, process.stdout), daemon=True)
        pump.start()
        self.children.append(Child(name=name, argv=argv, process=process, pump=pump))

    def start_children(self) -> None:
        self.spawn("web", [
            PYTHON, "-m", "uvicorn", "mathia.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log",
            "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "65536",
        ])  # fmt: skip
        self.spawn(
            "celery-worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "mathia",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                f"worker-{os.getpid()}@%h",
            ],
        )
        self.spawn(
            "celery-beat", [PYTHON, "-m", "celery", "-A", "mathia", "beat", "--loglevel", "INFO", "--pidfile", ""]
        )

    def wait_until_serving(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping.is_set():
            if self.dead_child() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:  # noqa: S310 (our own http URL)
                    if response.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def dead_child(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def stop(self) -> None:
        """Stop children newest first (beat, worker, web), then the private Redis."""
        self._stopping.set()
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"{child.name} did not stop within {STOP_TIMEOUT_SECONDS:g}s; killing it")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            if child.pump is not None:
                child.pump.join(timeout=2)
        if self.redis is not None:
            self.redis.stop()
        if self._lock_file is not None:
            self._lock_file.close()

    def banner(self) -> None:
        lines = [
            "",
            f"Mathia is running at {self.url}/",
            f"  Sign up:   {self.url}/accounts/signup/  (the verification email is printed here, in the 'web' lines)",
            f"  Sign in:   {self.url}/accounts/login/",
            f"  Admin:     {self.url}/admin/  (create an account with: .venv/bin/python manage.py createsuperuser)",
            f"  Readiness: {self.url}/readyz",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        for line in lines:
            _say(line)

    def supervise(self) -> int:
        """Block until Ctrl-C (exit 0) or until a child dies (exit 1)."""
        while not self._stopping.is_set():
            dead = self.dead_child()
            if dead is not None and dead.process is not None:
                _say(
                    f"{dead.name} exited with code {dead.process.returncode}; "
                    "stopping Mathia (nothing is restarted automatically)."
                )
                return 1
            self._stopping.wait(0.5)
        return 0


def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"Mathia cannot start: {exc}", file=sys.stderr)
        return 2
    environ = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="mathia.settings")
    stack = Stack(config, environ)

    def on_signal(signum: int, _frame: object) -> None:
        if not stack._stopping.is_set():
            _say("stopping…")
        stack._stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.acquire_lock()
        stack.check_port()
        stack.start_redis()
        stack.run_once("migrating the database", [PYTHON, "manage.py", "migrate", "--noinput"])
        stack.start_children()
        if stack.wait_until_serving():
            stack.banner()
        code = stack.supervise()
    except StackError as exc:
        print(f"mathia | {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        stack.stop()
    if code == 0:
        _say("stopped.")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
