"""/healthz and /readyz against the real services, a real Celery worker, and a Redis we stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from mathia.core.redis import _client_for
from mathia.embedded.redis import start_embedded_redis
from tests.processes import celery_worker


@pytest.fixture
def worker() -> Iterator[None]:
    with celery_worker():
        yield


def _readyz(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    return response.status_code, json.loads(response.content)


def test_healthz_touches_nothing(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok_when_every_service_answers(client: Client, worker: None) -> None:
    status, body = _readyz(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "channel_layer", "celery_worker"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["celery_worker"]["detail"]["workers"]


@pytest.mark.django_db
def test_readyz_503_when_no_worker_runs(client: Client) -> None:
    status, body = _readyz(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["celery_worker"]["ok"] is False
    assert "no Celery worker answered" in body["checks"]["celery_worker"]["error"]


@pytest.mark.django_db
def test_readyz_503_with_clear_json_when_redis_is_stopped(client: Client, settings: Any, tmp_path: Path) -> None:
    server = start_embedded_redis(tmp_path / "redis")
    url = server.url
    settings.REDIS_URL = url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    settings.CHANNEL_LAYERS = {
        "default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": {"hosts": [url], "prefix": "t"}}
    }
    try:
        status, body = _readyz(client)
        assert body["checks"]["redis"]["ok"] is True, body
        assert body["checks"]["channel_layer"]["ok"] is True, body
    finally:
        server.stop()
    status, body = _readyz(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["channel_layer"]["ok"] is False
    assert body["checks"]["celery_worker"] == {
        "ok": False,
        "latency_ms": 0.0,
        "error": "not checked: the broker (Redis) is unreachable",
    }
    _client_for.cache_clear()
