"""Chooses the database and Redis the test suite runs against, and says which.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` set to a URL make that service required: the
run fails if it does not answer (CI sets them). Unset, the suite uses PostgreSQL and Redis
on 127.0.0.1 when they answer, else SQLite and a private Redis. ``sqlite`` and ``private``
ask for the embedded backends explicitly.
"""

from __future__ import annotations

import atexit
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import redis

from mathia.core.config import sqlite_database
from mathia.embedded.redis import start_embedded_redis

DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mathia"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


class TestBackendUnavailable(RuntimeError):
    __test__ = False  # not a test class, whatever pytest thinks of the name


@dataclass(frozen=True)
class TestBackends:
    __test__ = False

    database: dict[str, Any]
    database_label: str
    redis_url: str
    redis_label: str

    @property
    def is_postgresql(self) -> bool:
        return "postgresql" in str(self.database["ENGINE"])

    def describe(self) -> str:
        return f"database: {self.database_label}; redis: {self.redis_label}"


def _postgres_answers(config: dict[str, Any]) -> str | None:
    """The server version if PostgreSQL accepts a connection, else None."""
    try:
        with psycopg.connect(
            host=config.get("HOST") or "127.0.0.1",
            port=int(config.get("PORT") or 5432),
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=2,
        ) as conn:
            version = conn.info.server_version  # e.g. 150020 for 15.20
            return f"{version // 10000}.{version % 10000}"
    except psycopg.Error:
        return None


def _redis_answers(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
        return str(info["redis_version"])
    except redis.RedisError:
        return None


def _choose_database(environ: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    requested = environ.get("TEST_DATABASE_URL", "").strip()
    if requested.lower() == "sqlite":
        return _sqlite(), "SQLite (asked for by TEST_DATABASE_URL=sqlite)"
    url = requested or DEFAULT_TEST_DATABASE_URL
    config = dict(dj_database_url.parse(url))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return _sqlite(), "SQLite (TEST_DATABASE_URL)"
    version = _postgres_answers(config)
    where = f"{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}"
    if version is None:
        if requested:
            raise TestBackendUnavailable(f"TEST_DATABASE_URL is set but PostgreSQL at {where} does not answer.")
        return _sqlite(), f"SQLite (no PostgreSQL answered at {where})"
    config["TEST"] = {"NAME": f"test_{config.get('NAME') or 'mathia'}"}
    config["CONN_HEALTH_CHECKS"] = True
    return config, f"PostgreSQL {version} at {where}" + (" (TEST_DATABASE_URL)" if requested else "")


def _sqlite() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="mathia-test-db-"))
    config = sqlite_database(folder / "mathia.sqlite3")
    # A file, not :memory:, so live servers and worker threads share one database.
    config["TEST"] = {"NAME": str(folder / "test.sqlite3")}
    return config


def _choose_redis(environ: Mapping[str, str]) -> tuple[str, str]:
    requested = environ.get("TEST_REDIS_URL", "").strip()
    if requested.lower() != "private":
        url = requested or DEFAULT_TEST_REDIS_URL
        version = _redis_answers(url)
        if version is not None:
            return url, f"Redis {version} at {url.split('@')[-1]}" + (" (TEST_REDIS_URL)" if requested else "")
        if requested:
            raise TestBackendUnavailable("TEST_REDIS_URL is set but that Redis does not answer.")
    server = start_embedded_redis(Path(tempfile.mkdtemp(prefix="mathia-test-redis-")))
    atexit.register(server.stop)
    reason = "asked for by TEST_REDIS_URL=private" if requested else f"no Redis answered at {DEFAULT_TEST_REDIS_URL}"
    return server.url, f"private Redis on port {server.port} ({reason})"


def select_test_backends(environ: Mapping[str, str]) -> TestBackends:
    database, database_label = _choose_database(environ)
    redis_url, redis_label = _choose_redis(environ)
    return TestBackends(database=database, database_label=database_label, redis_url=redis_url, redis_label=redis_label)
