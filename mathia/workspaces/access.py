"""The only way code reaches a workspace on behalf of a user."""

from __future__ import annotations

from mathia.accounts.models import User
from mathia.core.errors import NotFound, PermissionDenied
from mathia.workspaces.models import Membership


def access_workspace_for_user(*, user: User, slug: str) -> Membership:
    """The user's membership in the workspace ``slug``.

    A workspace that does not exist and one the user is not in answer alike, so that
    slugs cannot be probed.
    """
    membership = (
        Membership.objects.select_related("workspace")
        .filter(workspace__slug=slug, user=user, user__is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound("Workspace not found.")
    return membership


def access_workspace_by_id_for_user(*, user: User, workspace_id: int) -> Membership:
    """The same check as :func:`access_workspace_for_user`, by id (the router, MCP tokens)."""
    membership = (
        Membership.objects.select_related("workspace")
        .filter(workspace_id=workspace_id, user=user, user__is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound("Workspace not found.")
    return membership


def check_workspace_admin(membership: Membership) -> None:
    if not membership.is_admin:
        raise PermissionDenied("Only workspace owners and admins can do that.")
