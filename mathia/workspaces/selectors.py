"""Reads for workspaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

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
