"""Structured logging: one line per event, with the request id bound by django-structlog."""

from __future__ import annotations

import re
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|sessionid", re.IGNORECASE)
# Counts and timings that merely contain "token".
_NOT_SECRET = frozenset({"input_tokens", "output_tokens", "first_token_ms", "max_tokens"})
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop values whose key looks secret, and credentials embedded in URLs."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and key not in _NOT_SECRET:
            event_dict[key] = REDACTED
        elif isinstance(value, str) and "@" in value:
            event_dict[key] = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", value)
    return event_dict


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_secrets,
]


def logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    """Configure structlog and return the matching ``LOGGING`` dict for Django."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": _SHARED_PROCESSORS,
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.server": {"level": "WARNING"},
            "django.db.backends": {"level": "INFO"},
            "uvicorn.access": {"level": "WARNING"},
            # httpx logs every request URL at INFO, and some APIs take their key in the query string.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
