"""The assistant's account, and what addresses it."""

from __future__ import annotations

import re

from mathia.accounts.models import User

ASSISTANT_EMAIL = "mathia@assistant.invalid"  # .invalid: no mail can ever reach it
ASSISTANT_NAME = "Mathia"
_MENTION = re.compile(r"(?<![\w@])@mathia(?![\w])", re.IGNORECASE)


def assistant_user() -> User:
    """The assistant's account, created the first time it is needed.

    It has no usable password, so no one can sign in as it, and it is in no workspace: it
    takes part in rooms only, on behalf of the person who asked.
    """
    user = User.objects.filter(email=ASSISTANT_EMAIL).first()
    if user is not None:
        return user
    user, created = User.objects.get_or_create(
        email=ASSISTANT_EMAIL, defaults={"display_name": ASSISTANT_NAME, "is_assistant": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def mentions_assistant(body: str) -> bool:
    return _MENTION.search(body) is not None


def without_mention(body: str) -> str:
    """The question with "@mathia" (and a comma or colon after it) taken out."""
    return re.sub(_MENTION.pattern + r"[,:]?\s*", "", body, flags=re.IGNORECASE).strip() or body


def assistant_direct_key(user_id: int, assistant_id: int) -> str:
    """The ``direct_key`` of a person's private room with Mathia (sorted member ids)."""
    return ",".join(str(uid) for uid in sorted((user_id, assistant_id)))
