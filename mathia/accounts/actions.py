"""Writes for accounts."""

from __future__ import annotations

import secrets

import structlog
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from mathia.accounts.avatars import avatar_clean
from mathia.accounts.models import User, normalize_email
from mathia.accounts.timezones import timezone_names
from mathia.assistant.actions import assistant_room_ensure
from mathia.core.clock import Clock, system_clock
from mathia.core.errors import InvalidInput
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


def user_update_details(
    *,
    user: User,
    display_name: str,
    title: str,
    timezone: str,
    avatar: UploadedFile | None = None,
    remove_avatar: bool = False,
) -> User:
    """Save the profile asked for by onboarding and Settings → Profile.

    Bad input raises InvalidInput naming the field, so forms show it beside that field.
    """
    display_name = " ".join(display_name.split())
    if not display_name:
        raise InvalidInput("Enter a display name.", field="display_name")
    if len(display_name) > 80:
        raise InvalidInput("A display name is at most 80 characters.", field="display_name")
    title = " ".join(title.split())
    if len(title) > 80:
        raise InvalidInput("A role or title is at most 80 characters.", field="title")
    if timezone not in timezone_names():
        raise InvalidInput("Choose a timezone from the list.", field="timezone")
    cleaned = avatar_clean(avatar) if avatar is not None else None
    old = user.avatar.name if user.avatar else ""
    user.display_name, user.title, user.timezone = display_name, title, timezone
    fields = ["display_name", "title", "timezone"]
    if cleaned is not None:
        user.avatar.save(f"{user.pk}-{secrets.token_hex(6)}.png", cleaned, save=False)
        fields.append("avatar")
    elif remove_avatar and old:
        user.avatar = ""
        fields.append("avatar")
    user.save(update_fields=fields)
    if old and "avatar" in fields:
        transaction.on_commit(lambda: default_storage.delete(old))
    return user


def user_onboarding_move(*, user: User, step: str) -> None:
    """Remember where the wizard is, so a person who leaves comes back to it."""
    if user.onboarding_step != step:
        user.onboarding_step = step
        user.save(update_fields=["onboarding_step"])


def user_onboarding_finish(*, user: User, clock: Clock = system_clock) -> None:
    if user.onboarded_at is None:
        user.onboarded_at = clock.now()
        user.onboarding_step = "done"
        user.save(update_fields=["onboarded_at", "onboarding_step"])
        log.info("user_onboarded", user_id=user.pk)
