"""The suite's own backend choice: an explicitly requested service that is down fails the run."""

from __future__ import annotations

import pytest

from mathia.embedded.redis import free_port
from mathia.testing.backends import TestBackendUnavailable, select_test_backends


def test_requested_postgres_that_does_not_answer_fails_instead_of_falling_back() -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/mathia"
    with pytest.raises(TestBackendUnavailable, match="TEST_DATABASE_URL is set but PostgreSQL"):
        select_test_backends({"TEST_DATABASE_URL": url})


def test_requested_redis_that_does_not_answer_fails_instead_of_falling_back() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(TestBackendUnavailable, match="TEST_REDIS_URL is set but that Redis does not answer"):
        select_test_backends({"TEST_DATABASE_URL": "sqlite", "TEST_REDIS_URL": url})


def test_unreachable_defaults_fall_back_to_the_embedded_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    import mathia.testing.backends as backends

    monkeypatch.setattr(backends, "DEFAULT_TEST_DATABASE_URL", f"postgres://postgres@127.0.0.1:{free_port()}/mathia")
    monkeypatch.setattr(backends, "DEFAULT_TEST_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    chosen = select_test_backends({})
    assert chosen.database["ENGINE"] == "django.db.backends.sqlite3"
    assert "no PostgreSQL answered" in chosen.database_label
    assert "private Redis" in chosen.redis_label
    assert "no Redis answered" in chosen.redis_label
