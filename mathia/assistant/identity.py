"""The assistant's account, and what addresses it."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete

from mathia.accounts.models import User

ASSISTANT_EMAIL = "mathia@assistant.invalid"  # .invalid: no mail can ever reach it
ASSISTANT_NAME = "Mathia"
_MENTION = re.compile(r"(?<![\w@])@mathia(?![\w])", re.IGNORECASE)


_cached: User | None = None


def assistant_user() -> User:
    """The assistant's account, created the first time it is needed.

    It has no usable password, so no one can sign in as it, and it is in no workspace: it
    takes part in rooms only, on behalf of the person who asked.

    Kept per process once read: every answer and every message mentioning @mathia needs it,
    and the query cost more than the rest of a mention check (0.7 ms of CPU). The account is
    never edited; deleting it forgets it (``forget_assistant_user``). Callers must not modify it.
    """
    user = _cached
    if user is not None:
        return user
    user = User.objects.filter(email=ASSISTANT_EMAIL).first()
    if user is None:
        user, created = User.objects.get_or_create(
            email=ASSISTANT_EMAIL, defaults={"display_name": ASSISTANT_NAME, "is_assistant": True}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
    # Kept once committed: an account made in a transaction that rolls back must not be kept.
    transaction.on_commit(lambda: _remember(user))
    return user


def _remember(user: User) -> None:
    global _cached
    _cached = user


def forget_assistant_user() -> None:
    """Read the account again next time (it was deleted, or a test emptied the database)."""
    global _cached
    _cached = None


def _forget_when_deleted(sender: Any, instance: User, **kwargs: Any) -> None:
    if instance.email == ASSISTANT_EMAIL:
        forget_assistant_user()


post_delete.connect(_forget_when_deleted, sender=User, dispatch_uid="mathia.assistant.identity.forget")


def mentions_assistant(body: str) -> bool:
    return _MENTION.search(body) is not None


def count_assistant_mentions(body: str) -> int:
    return sum(1 for _ in _MENTION.finditer(body))


def without_mention(body: str) -> str:
    """The question with "@mathia" (and a comma or colon after it) taken out."""
    return re.sub(_MENTION.pattern + r"[,:]?\s*", "", body, flags=re.IGNORECASE).strip() or body


def assistant_direct_key(user_id: int, assistant_id: int) -> str:
    """The ``direct_key`` of a person's private room with Mathia (sorted member ids)."""
    return ",".join(str(uid) for uid in sorted((user_id, assistant_id)))
