"""How long `make run`'s stack takes to serve, and how fast it answers, on this machine.

Starts the embedded stack (SQLite, private Redis, uvicorn, Celery worker and beat) in a
temporary data folder, then times sequential requests to a page and to /readyz.
Run: .venv/bin/python bench/startup_and_latency.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mathia.embedded.redis import free_port  # noqa: E402


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {statistics.median(ordered):.1f} ms, p99 {p(0.99):.1f} ms, max {ordered[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally block on SIGTERM
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="mathia-bench-"))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir), "DATA_DIR": str(data_dir), "PORT": str(port)}
    env["LOG_LEVEL"] = "WARNING"
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    stack = subprocess.Popen(
        [sys.executable, "-m", "mathia.embedded.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        serving = ready = None
        deadline = time.monotonic() + 120
        while ready is None and time.monotonic() < deadline:
            try:
                if serving is None and _get(f"{base}/healthz") == 200:
                    serving = time.perf_counter() - started
                if serving is not None and _get(f"{base}/readyz") == 200:
                    ready = time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.05)
        if ready is None:
            raise SystemExit("the stack did not become ready within 120 s")
        print(f"cold start (fresh data folder, migrations included): serving after {serving:.2f} s,", end=" ")
        print(f"ready after {ready:.2f} s")
        for path in ["/accounts/login/", "/healthz", "/readyz"]:
            _get(base + path)  # warm up
            samples = []
            for _ in range(args.requests if path != "/readyz" else max(20, args.requests // 10)):
                t0 = time.perf_counter()
                status = _get(base + path)
                samples.append((time.perf_counter() - t0) * 1000)
                assert status == 200, (path, status)
            print(f"GET {path:<17} x{len(samples):<4} {_percentiles(samples)}")
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(30)


if __name__ == "__main__":
    main()
