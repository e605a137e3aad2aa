"""Secrets at rest (external servers' auth headers), encrypted with Fernet.

The key is derived from ``SECRET_KEY`` with HKDF under a purpose label, so it is never the
same bytes as anything else Django derives from that key. Rotating ``SECRET_KEY`` makes the
stored headers unreadable: the server is then reported as needing its header re-entered,
never sent with a garbled one.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from mathia.core.errors import AppError

_PURPOSE = b"mathia.mcpbridge.server-secrets.v1"


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt_secret(value: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(value.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise AppError(
            "This server's auth header cannot be read (was SECRET_KEY changed?); an admin must enter it again.",
            code="mcp_secret_unreadable",
            http_status=409,
        ) from None
