"""Structured logs: one line per event, a request id on every request's lines, no secrets."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from django.test import Client

from mathia.core.logging import logging_config


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Route the root logger through the production (JSON) configuration into a buffer."""
    stream = io.StringIO()
    config = logging_config(level="INFO", fmt="json")
    formatter = logging.config.DictConfigurator(config).configure_custom(dict(config["formatters"]["structured"]))
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def _events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_every_request_line_carries_the_same_request_id(client: Client, json_log: io.StringIO) -> None:
    # An id sent by the client is not trusted: the server makes its own.
    client.get("/healthz", HTTP_X_REQUEST_ID="forged-id")
    client.get("/healthz")
    events = _events(json_log)
    started = [e for e in events if e["event"] == "request_started"]
    finished = [e for e in events if e["event"] == "request_finished"]
    assert len(started) == len(finished) == 2
    assert [e["request_id"] for e in started] == [e["request_id"] for e in finished]
    assert len({e["request_id"] for e in started}) == 2
    assert all(uuid.UUID(e["request_id"]) for e in started)
    assert all(e["level"] and e["timestamp"] and e["logger"] for e in events)


def test_secrets_are_redacted(json_log: io.StringIO) -> None:
    log = structlog.get_logger("mathia.test")
    log.info("connecting", password="hunter2", url="postgres://mathia:pg-secret@db:5432/mathia", api_key="sk-live-1")
    logging.getLogger("mathia.stdlib").warning("plain stdlib line with %s", "an argument")
    events = _events(json_log)
    text = json_log.getvalue()
    assert "hunter2" not in text
    assert "pg-secret" not in text
    assert "sk-live-1" not in text
    assert events[0]["url"] == "postgres://[redacted]@db:5432/mathia"
    assert events[1]["event"] == "plain stdlib line with an argument"
    assert len(json_log.getvalue().strip().splitlines()) == 2
