"""No Docker engine runs here, so the compose file and Dockerfile are checked by reading them."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.processes import PROJECT_ROOT

LONG_RUNNING = ["web", "db", "redis", "celery_worker", "celery_beat"]
APP_SERVICES = ["migrate", "web", "celery_worker", "celery_beat"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service(compose: dict[str, Any]) -> None:
    assert set(LONG_RUNNING) | {"migrate"} == set(compose["services"])
    assert compose["services"]["db"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_health_check(compose: dict[str, Any], name: str) -> None:
    check = compose["services"][name]["healthcheck"]
    assert check["test"]
    assert check["interval"]


def test_migrations_run_once_in_their_own_step(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ["web", "celery_worker", "celery_beat"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "migrate" not in " ".join(services[name].get("command", []))
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_app_services_run_the_right_commands_in_production(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["MATHIA_ENV"] == "production"
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["celery_worker"]["command"][:4] == ["celery", "-A", "mathia", "worker"]
    assert services["celery_beat"]["command"][:4] == ["celery", "-A", "mathia", "beat"]
    assert "command" not in services["web"]  # the image's CMD: uvicorn


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    assert {"postgres-data", "redis-data", "media"} <= set(compose["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["db"]["volumes"]


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert len(stages) >= 2
    assert all("slim" in image for image in stages)
    assert re.search(r"^USER\s+mathia\s*$", dockerfile, flags=re.MULTILINE)
    assert "--require-hashes -r /tmp/requirements.lock" in dockerfile
    assert "uvicorn" in dockerfile
    assert "mathia.asgi:application" in dockerfile


def test_every_compose_variable_is_documented_in_env_example(compose: dict[str, Any]) -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    raw = (PROJECT_ROOT / "docker-compose.yml").read_text()
    for variable in set(re.findall(r"\$\{([A-Z_]+)", raw)):
        assert re.search(rf"^#?\s*{variable}=", example, flags=re.MULTILINE), variable
