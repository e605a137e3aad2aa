"""Writes for accounts."""

from __future__ import annotations

import structlog
from django.db import transaction

from mathia.accounts.models import User, normalize_email
from mathia.assistant.actions import assistant_room_ensure
from mathia.workspaces.actions import workspace_create_default

log = structlog.get_logger(__name__)


def user_register(*, user: User) -> User:
    """Save a new user with their default workspace and private room with Mathia, in one transaction."""
    user.email = normalize_email(user.email)
    if not user.display_name:
        user.display_name = user.email.split("@", 1)[0][:80]
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        user.save()
        workspace = workspace_create_default(owner=user)
        assistant_room_ensure(user=user, workspace_id=workspace.pk)
    log.info("user_registered", user_id=user.pk)
    return user


def user_update_profile(*, user: User, display_name: str, timezone: str) -> User:
    user.display_name = display_name.strip()
    user.timezone = timezone
    user.full_clean(exclude=["password"])
    user.save(update_fields=["display_name", "timezone"])
    return user
