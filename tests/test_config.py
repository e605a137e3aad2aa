"""Configuration: every bad or missing value stops start-up naming the variable, never its value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mathia.core.config import ConfigError, load_config
from tests.processes import PROJECT_ROOT

SECRET = "s3cr3t-" + "k" * 20 + "abcdefghijklmnopqrstuvwxyz0123456789"
PRODUCTION = {
    "MATHIA_ENV": "production",
    "SECRET_KEY": SECRET,
    "ALLOWED_HOSTS": "chat.example.com",
    "DATABASE_URL": "postgres://mathia:hunter2-db-password@db:5432/mathia",
    "REDIS_URL": "redis://:hunter3-redis-password@redis:6379/0",
}


def _manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("environ", "variable", "secret"),
    [
        ({"DEBUG": "maybe"}, "DEBUG", None),
        ({"EMAIL_PORT": "seventy"}, "EMAIL_PORT", None),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", None),
        ({"DATABASE_URL": "mysql://root:pa55word-db@db/mathia"}, "DATABASE_URL", "pa55word-db"),
        ({"REDIS_URL": "http://:pa55word-redis@cache"}, "REDIS_URL", "pa55word-redis"),
        ({**PRODUCTION, "SECRET_KEY": ""}, "SECRET_KEY", None),
        ({**PRODUCTION, "SECRET_KEY": "short-secret-value"}, "SECRET_KEY", "short-secret-value"),
        ({**PRODUCTION, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS", None),
        ({**PRODUCTION, "DATABASE_URL": ""}, "DATABASE_URL", None),
        ({**PRODUCTION, "DEBUG": "true"}, "DEBUG", None),
        ({"MATHIA_ENV": "staging"}, "MATHIA_ENV", None),
        ({"MESSAGE_RATE_LIMIT": "30/0s"}, "MESSAGE_RATE_LIMIT", None),  # a window of zero seconds
        ({"MCP_REQUEST_RATE_LIMIT": "often"}, "MCP_REQUEST_RATE_LIMIT", None),
    ],
)
def test_bad_values_name_the_variable_without_echoing_it(
    environ: dict[str, str], variable: str, secret: str | None
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ)
    message = str(caught.value)
    assert variable in message
    if secret:
        assert secret not in message
    for value in environ.values():
        if len(value) > 12:
            assert value not in message


def test_defaults_are_a_local_sqlite_stack(tmp_path: Path) -> None:
    config = load_config({"DATA_DIR": str(tmp_path)})
    assert config.DEBUG is False
    assert config.database()["ENGINE"] == "django.db.backends.sqlite3"
    assert str(config.database()["NAME"]).startswith(str(tmp_path))
    key = config.secret_key()
    assert len(key) >= 50
    assert config.secret_key() == key  # kept in the data folder, not regenerated
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_postgres_url_uses_psycopg(tmp_path: Path) -> None:
    config = load_config({**PRODUCTION, "DATA_DIR": str(tmp_path)})
    database = config.database()
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["HOST"] == "db"


def test_start_up_stops_with_the_variable_name_and_no_secret(tmp_path: Path) -> None:
    result = _manage("check", env={**PRODUCTION, "SECRET_KEY": "tiny-but-secret"}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr
    assert "tiny-but-secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_production_settings_pass_check_deploy_with_no_warnings(tmp_path: Path) -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_every_variable_is_documented_in_env_example() -> None:
    from mathia.core.config import MathiaConfig

    example = (PROJECT_ROOT / ".env.example").read_text()
    for name in MathiaConfig.model_fields:
        assert f"{name}=" in example, name
