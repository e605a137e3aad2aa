from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from mathia.assistant.identity import forget_assistant_user
from mathia.core.redis import get_redis
from tests.helpers import assert_error, make_user  # noqa: F401  (re-exported for tests)


def pytest_report_header(config: pytest.Config) -> str:
    return f"mathia test backends: {django_settings.TEST_BACKENDS.describe()}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"mathia test backends: {django_settings.TEST_BACKENDS.describe()}")


@pytest.fixture(scope="session", autouse=True)
def _release_thread_connections(django_db_setup: None) -> Iterator[None]:
    """Close database connections left in worker threads of finished event loops.

    Async tests run consumers whose database calls use each test's loop's thread pool; when
    the loop is gone, those threads' connections wait for garbage collection, and an open
    session would stop the test database from being dropped.
    """
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _fresh_assistant_account() -> Iterator[None]:
    """Each test's database is emptied afterwards: the cached assistant account goes with it."""
    forget_assistant_user()
    yield
    forget_assistant_user()


@pytest.fixture(autouse=True)
def isolated_redis(settings: Any) -> Iterator[str]:
    """Give every test its own Redis keyspace, and delete it afterwards."""
    client = get_redis()  # the run's Redis, even if the test points settings elsewhere
    prefix = f"{django_settings.TEST_RUN_REDIS_PREFIX}{uuid.uuid4().hex[:10]}:"
    settings.REDIS_KEY_PREFIX = prefix
    settings.CACHES = {
        "default": {**django_settings.CACHES["default"], "KEY_PREFIX": prefix + "cache"},
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            **django_settings.CHANNEL_LAYERS["default"],
            "CONFIG": {**django_settings.CHANNEL_LAYERS["default"]["CONFIG"], "prefix": prefix + "channels"},
        }
    }
    yield prefix
    keys = list(client.scan_iter(match=f"*{prefix}*", count=500))
    if keys:
        client.delete(*keys)
