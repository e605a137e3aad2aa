"""Reads for workspaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from mathia.core.errors import NotFound
from mathia.realtime import presence
from mathia.workspaces.models import Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("workspace").order_by("-is_default", "workspace__name")


def default_membership(*, user: User) -> Membership | None:
    return memberships_for_user(user=user).filter(is_default=True).first()


def workspace_members(*, membership: Membership) -> list[Membership]:
    """Everyone in ``membership``'s workspace (the caller already passed the access check)."""
    return list(
        Membership.objects.filter(workspace_id=membership.workspace_id)
        .select_related("user")
        .order_by("user__display_name", "user_id")
    )


def workspace_people(*, membership: Membership) -> list[dict[str, Any]]:
    """Everyone in the workspace with their presence (online, away, offline), for the chat page."""
    members = workspace_members(membership=membership)
    status = presence.statuses(m.user_id for m in members)
    return [{"id": m.user_id, "name": m.user.name, "role": m.role, "status": status[m.user_id]} for m in members]


def member_of_workspace(*, workspace_id: int, user_id: int) -> Membership:
    """Another person's membership in a workspace the caller already passed the check for."""
    target = Membership.objects.filter(workspace_id=workspace_id, user_id=user_id).select_related("user").first()
    if target is None:
        raise NotFound("That person is not in this workspace.")
    return target
