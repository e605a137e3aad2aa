"""Personal access tokens: making one, and turning a presented one back into its row."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "mathia_pat_"  # noqa: S105 (a public marker, not a secret)
_DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 4


def new_token() -> str:
    """A fresh token: a recognisable prefix (secret scanners key on it) and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:_DISPLAY_PREFIX_LENGTH]


def looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 < len(token) < 200
