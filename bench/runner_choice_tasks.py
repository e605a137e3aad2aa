"""Celery tasks for ``bench/assistant_runner_choice.py``, loaded by its worker with ``--include``.

Each task stamps the wall-clock time it started (and, for ``hold``, finished) into a Redis
list the benchmark reads; nothing else.
"""

from __future__ import annotations

import json
import time

from celery import shared_task

from mathia.core.redis import get_redis, redis_key


def results_key() -> str:
    return redis_key("bench", "runner_choice")


@shared_task(name="bench.runner_choice.probe", ignore_result=True)
def probe(token: str, sent_at: float) -> None:
    """Do nothing but say when it started."""
    started = time.time()
    get_redis().rpush(results_key(), json.dumps({"token": token, "sent_at": sent_at, "started_at": started}))


@shared_task(name="bench.runner_choice.hold", ignore_result=True)
def hold(token: str, sent_at: float, seconds: float) -> None:
    """Hold the worker process for ``seconds``, as an answer streaming for that long would."""
    started = time.time()
    time.sleep(seconds)
    get_redis().rpush(
        results_key(),
        json.dumps({"token": token, "sent_at": sent_at, "started_at": started, "finished_at": time.time()}),
    )
