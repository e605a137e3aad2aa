"""Reads Mathia's configuration from the environment, once, and validates it.

Only the settings module calls :func:`load_config`. Errors name the variable and never
echo its value, because values such as ``DATABASE_URL`` or ``SECRET_KEY`` carry secrets.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

import dj_database_url
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
ProviderName = Literal["anthropic", "openai", "builtin"]
DEFAULT_PROVIDERS: tuple[ProviderName, ...] = ("anthropic", "openai", "builtin")


#: A rate limit: "30/m", "5/10s", "100/h" (``core.ratelimit.Rate.parse`` reads it).
RATE_PATTERN = r"([1-9][0-9]*)/([1-9][0-9]*)?([smh])"


class ConfigError(Exception):
    """A missing or invalid environment variable; the message names it, never its value."""


class MathiaConfig(BaseModel):
    """Every environment variable Mathia reads. `.env.example` documents each one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    MATHIA_ENV: Literal["local", "production"] = "local"
    DEBUG: bool = False
    SECRET_KEY: SecretStr | None = None
    DATA_DIR: Path = PROJECT_ROOT / ".data"
    ALLOWED_HOSTS: list[str] = Field(default_factory=list)
    CSRF_TRUSTED_ORIGINS: list[str] = Field(default_factory=list)
    DATABASE_URL: SecretStr | None = None
    DATABASE_CONN_MAX_AGE: int = Field(default=60, ge=0)
    REDIS_URL: SecretStr | None = None
    PORT: int = Field(default=8000, ge=1, le=65535)

    EMAIL_BACKEND: Literal["console", "smtp"] | None = None
    EMAIL_HOST: str = "localhost"
    EMAIL_PORT: int = Field(default=587, ge=1, le=65535)
    EMAIL_HOST_USER: str = ""
    EMAIL_HOST_PASSWORD: SecretStr = SecretStr("")
    EMAIL_USE_TLS: bool = True
    DEFAULT_FROM_EMAIL: str = "Mathia <mathia@localhost>"

    SECURE_SSL_REDIRECT: bool = True
    SECURE_HSTS_SECONDS: int = Field(default=31_536_000, ge=0)
    BEHIND_TLS_PROXY: bool = False

    CHANNEL_LAYER: Literal["pubsub", "core"] = "pubsub"
    MESSAGE_RATE_LIMIT: str = Field(default="30/10s", pattern=f"^{RATE_PATTERN}$")

    LLM_PROVIDERS: list[ProviderName] = Field(default_factory=lambda: list(DEFAULT_PROVIDERS), min_length=1)
    ANTHROPIC_API_KEY: SecretStr | None = None
    ANTHROPIC_BASE_URL: str | None = None
    ANTHROPIC_MODEL: str = "claude-sonnet-4-5"
    OPENAI_API_KEY: SecretStr | None = None
    OPENAI_BASE_URL: str | None = None
    OPENAI_MODEL: str = "gpt-4o-mini"
    LLM_FIRST_TOKEN_TIMEOUT: float = Field(default=30.0, gt=0, le=600)
    LLM_IDLE_TIMEOUT: float = Field(default=30.0, gt=0, le=600)
    LLM_MAX_RETRIES: int = Field(default=2, ge=0, le=10)
    LLM_MAX_OUTPUT_TOKENS: int = Field(default=1024, ge=16, le=64_000)
    LLM_CONTEXT_TOKENS: int = Field(default=8000, ge=500, le=1_000_000)
    LLM_PRICES: dict[str, tuple[float, float]] = Field(default_factory=dict)
    ASSISTANT_MAX_PER_USER: int = Field(default=2, ge=1)
    ASSISTANT_MAX_PER_WORKSPACE: int = Field(default=10, ge=1)
    ASSISTANT_MAX_TOTAL: int = Field(default=400, ge=1)
    ASSISTANT_FLUSH_MS: int = Field(default=40, ge=5, le=1000)
    REMINDER_DISPATCH_SECONDS: float = Field(default=1.0, ge=0.2, le=60)
    REMINDER_LEASE_SECONDS: float = Field(default=5.0, ge=1, le=600)
    REMINDER_BATCH: int = Field(default=25, ge=1, le=1000)
    ASSISTANT_TOOL_STEPS: int = Field(default=4, ge=1, le=20)
    ASSISTANT_TOOL_TOKENS: int = Field(default=20_000, ge=500, le=1_000_000)
    ASSISTANT_TOOL_SECONDS: float = Field(default=60.0, gt=0, le=600)

    OPENWEATHER_API_KEY: SecretStr | None = None
    GIPHY_API_KEY: SecretStr | None = None
    GIPHY_RATING: Literal["g", "pg", "pg-13", "r"] = "g"
    EXCHANGERATE_API_KEY: SecretStr | None = None

    WALLET_STARTING_GRANT: int = Field(default=500, ge=0, le=10**9)
    WALLET_PRICES: dict[str, tuple[Decimal, Decimal]] = Field(default_factory=dict)
    WALLET_LOW_BALANCE: int = Field(default=100, ge=0)
    WALLET_ALERT_EMAILS: list[str] = Field(default_factory=list)
    AVATAR_MAX_BYTES: int = Field(default=2 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    MCP_STDIO_SERVERS: dict[str, list[str]] = Field(default_factory=dict)
    MCP_CLIENT_TIMEOUT: float = Field(default=20.0, gt=0, le=300)
    MCP_CLIENT_PRIVATE_NETWORKS: bool = False
    MCP_REQUEST_RATE_LIMIT: str = Field(default="120/m", pattern=f"^{RATE_PATTERN}$")

    LOG_LEVEL: LogLevel = "INFO"
    LOG_FORMAT: Literal["json", "console"] | None = None

    @field_validator("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("MCP_STDIO_SERVERS", mode="before")
    @classmethod
    def _stdio_servers(cls, value: object) -> object:
        """``name=/abs/command arg...;other=...``: complete command lines, each under a name."""
        if not isinstance(value, str):
            return value
        servers: dict[str, list[str]] = {}
        for item in value.split(";"):
            if not item.strip():
                continue
            name, sep, line = item.partition("=")
            name = name.strip()
            try:
                argv = shlex.split(line)
            except ValueError:
                raise ValueError("a command line cannot be parsed (check its quotes)") from None
            if not sep or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name) or not argv:
                raise ValueError("must look like name=/absolute/command args;other=... (names: a-z, 0-9, -)")
            if not argv[0].startswith("/"):
                raise ValueError("each command must start with an absolute path")
            servers[name] = argv
        return servers

    @field_validator("LLM_PROVIDERS", mode="before")
    @classmethod
    def _provider_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().lower() for item in value.split(",") if item.strip()]
        return value

    @field_validator("LLM_PRICES", mode="before")
    @classmethod
    def _prices(cls, value: object) -> object:
        """``model=input/output,...`` in US dollars per million tokens, e.g. ``gpt-4o-mini=0.15/0.6``."""
        if not isinstance(value, str):
            return value
        prices: dict[str, tuple[float, float]] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            model, sep, pair = item.partition("=")
            parts = pair.split("/")
            if not sep or not model.strip() or len(parts) != 2:
                raise ValueError("must look like model=input/output,... (dollars per million tokens)")
            try:
                prices[model.strip()] = (float(parts[0]), float(parts[1]))
            except ValueError:
                raise ValueError("prices must be numbers, like gpt-4o-mini=0.15/0.6") from None
        return prices

    @field_validator("WALLET_ALERT_EMAILS", mode="before")
    @classmethod
    def _email_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("WALLET_PRICES", mode="before")
    @classmethod
    def _wallet_prices(cls, value: object) -> object:
        """``provider:model=input/output,...`` in credits per 1,000 tokens; ``*`` as the model matches any."""
        if not isinstance(value, str):
            return value
        prices: dict[str, tuple[Decimal, Decimal]] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, pair = item.partition("=")
            provider, colon, model = key.strip().partition(":")
            parts = pair.split("/")
            if not sep or not colon or not provider.strip() or not model.strip() or len(parts) != 2:
                raise ValueError("must look like provider:model=input/output,... (credits per 1,000 tokens)")
            try:
                price = (Decimal(parts[0].strip()), Decimal(parts[1].strip()))
            except InvalidOperation:
                raise ValueError("prices must be numbers, like openai:gpt-4o-mini=0.2/0.8") from None
            if not all(p.is_finite() and p >= 0 for p in price):
                raise ValueError("prices must be zero or more")
            prices[f"{provider.strip()}:{model.strip()}"] = price
        return prices

    @field_validator("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("DATABASE_URL")
    @classmethod
    def _parsable_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = value.get_secret_value()
            if not url.startswith(("sqlite:", "postgres:", "postgresql:", "pgsql:")):
                raise ValueError("must start with sqlite:// or postgres://")
            dj_database_url.parse(url)
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _production_requirements(self) -> MathiaConfig:
        if self.MATHIA_ENV != "production":
            return self
        if self.SECRET_KEY is None:
            raise ValueError("SECRET_KEY is required when MATHIA_ENV=production")
        key = self.SECRET_KEY.get_secret_value()
        if len(key) < 50 or len(set(key)) < 5:
            raise ValueError("SECRET_KEY must be at least 50 random characters in production")
        if not self.ALLOWED_HOSTS:
            raise ValueError("ALLOWED_HOSTS is required when MATHIA_ENV=production")
        if self.DATABASE_URL is None:
            raise ValueError("DATABASE_URL is required when MATHIA_ENV=production")
        if self.REDIS_URL is None:
            raise ValueError("REDIS_URL is required when MATHIA_ENV=production")
        if self.DEBUG:
            raise ValueError("DEBUG must be off when MATHIA_ENV=production")
        return self

    @property
    def is_production(self) -> bool:
        return self.MATHIA_ENV == "production"

    def database(self) -> dict[str, object]:
        """Django's DATABASES['default'] for the configured URL (SQLite in DATA_DIR by default)."""
        if self.DATABASE_URL is None:
            return sqlite_database(self.DATA_DIR / "mathia.sqlite3")
        config = dict(
            dj_database_url.parse(
                self.DATABASE_URL.get_secret_value(), conn_max_age=self.DATABASE_CONN_MAX_AGE, conn_health_checks=True
            )
        )
        if config["ENGINE"] == "django.db.backends.sqlite3":
            return sqlite_database(Path(str(config["NAME"])))
        return config

    def secret_key(self) -> str:
        """The configured key, or one generated once and kept in DATA_DIR for local runs."""
        if self.SECRET_KEY is not None:
            return self.SECRET_KEY.get_secret_value()
        key_file = self.DATA_DIR / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(64)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        return key


def sqlite_database(path: Path) -> dict[str, object]:
    """SQLite tuned for a web process, a worker and beat writing at once (WAL, IMMEDIATE)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        },
    }


def load_config(environ: Mapping[str, str]) -> MathiaConfig:
    """Validate ``environ`` into a :class:`MathiaConfig` or raise :class:`ConfigError`."""
    values = {name: environ[name] for name in MathiaConfig.model_fields if name in environ and environ[name] != ""}
    try:
        return MathiaConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name else message)
    return "Invalid configuration. " + "; ".join(problems)
