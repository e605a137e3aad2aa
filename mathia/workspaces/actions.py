"""Writes for workspaces and memberships. Role rules live here and nowhere else."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from mathia.core.errors import InvalidInput, PermissionDenied
from mathia.wallet.actions import wallet_open, wallet_open_with_grant
from mathia.workspaces.access import check_workspace_admin
from mathia.workspaces.models import Membership, Role, Workspace

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

# Addresses that are pages of their own under /w/ (``/w/new/`` creates a workspace).
RESERVED_SLUGS = frozenset({"new"})


def workspace_create(*, owner: User, name: str, make_default: bool = False) -> Workspace:
    """Create a workspace owned by ``owner`` with a unique slug derived from ``name``."""
    name = name.strip()
    if not name:
        raise InvalidInput("A workspace needs a name.", field="name")
    if len(name) > 80:
        raise InvalidInput("A workspace name is at most 80 characters.", field="name")
    base = slugify(name)[:40] or "workspace"
    for attempt in range(8):
        slug = base if attempt == 0 and base not in RESERVED_SLUGS else f"{base}-{secrets.token_hex(3)}"
        try:
            with transaction.atomic():
                workspace = Workspace.objects.create(name=name, slug=slug, owner=owner)
                if make_default:
                    Membership.objects.filter(user=owner, is_default=True).update(is_default=False)
                Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER, is_default=make_default)
                if make_default:  # the one made at sign-up; more workspaces bring no free credits
                    wallet_open_with_grant(
                        workspace_id=workspace.pk, owner_id=owner.pk, grant=settings.WALLET_STARTING_GRANT
                    )
                else:
                    wallet_open(workspace_id=workspace.pk)
        except IntegrityError:
            if Workspace.objects.filter(slug=slug).exists():
                continue
            raise
        log.info("workspace_created", workspace_id=workspace.pk, owner_id=owner.pk)
        return workspace
    raise InvalidInput("Could not find a free address for this workspace; try another name.", field="name")


def workspace_create_default(*, owner: User) -> Workspace:
    return workspace_create(owner=owner, name=f"{owner.name}'s workspace", make_default=True)


def membership_add(*, workspace: Workspace, user: User, role: Role = Role.MEMBER) -> Membership:
    """Add ``user`` to ``workspace``; adding someone already in it keeps their role."""
    if role == Role.OWNER:
        raise InvalidInput("A workspace has one owner; transfer ownership instead.", field="role")
    membership, _ = Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


def membership_set_role(*, actor: Membership, target: Membership, role: str) -> Membership:
    """Change ``target``'s role as ``actor`` (a membership in the same workspace).

    Owners and admins manage roles; only the owner can make or unmake admins' peers into
    owners, and the owner's own role changes only through an ownership transfer.
    """
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; choose owner, admin or member.", field="role")
    if actor.workspace_id != target.workspace_id:
        raise PermissionDenied("That person is not in this workspace.")
    check_workspace_admin(actor)
    if role == Role.OWNER:
        return workspace_transfer_ownership(actor=actor, target=target)
    if target.role == Role.OWNER:
        raise PermissionDenied("The owner's role changes only by transferring ownership.")
    if target.role == Role.ADMIN and actor.role != Role.OWNER and target.pk != actor.pk:
        raise PermissionDenied("Only the owner can change another admin's role.")
    target.role = role
    target.save(update_fields=["role"])
    log.info(
        "membership_role_changed",
        workspace_id=target.workspace_id,
        user_id=target.user_id,
        role=role,
        actor_id=actor.user_id,
    )
    return target


def workspace_transfer_ownership(*, actor: Membership, target: Membership) -> Membership:
    if actor.role != Role.OWNER:
        raise PermissionDenied("Only the owner can transfer ownership.")
    if actor.workspace_id != target.workspace_id:
        raise PermissionDenied("That person is not in this workspace.")
    with transaction.atomic():
        Workspace.objects.filter(pk=actor.workspace_id).update(owner_id=target.user_id)
        Membership.objects.filter(pk=actor.pk).update(role=Role.ADMIN)
        Membership.objects.filter(pk=target.pk).update(role=Role.OWNER)
    actor.role = Role.ADMIN
    target.role = Role.OWNER
    log.info(
        "workspace_ownership_transferred",
        workspace_id=target.workspace_id,
        to_user_id=target.user_id,
        actor_id=actor.user_id,
    )
    return target


def membership_remove(*, actor: Membership, target: Membership) -> None:
    """Remove ``target`` (an admin removing someone, or a member leaving)."""
    if actor.workspace_id != target.workspace_id:
        raise PermissionDenied("That person is not in this workspace.")
    if target.role == Role.OWNER:
        raise PermissionDenied("The owner cannot leave or be removed; transfer ownership first.")
    if actor.pk != target.pk:
        check_workspace_admin(actor)
        if target.role == Role.ADMIN and actor.role != Role.OWNER:
            raise PermissionDenied("Only the owner can remove an admin.")
    target.delete()


_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])$")


def workspace_rename(*, actor: Membership, name: str, slug: str = "") -> Workspace:
    """Set the workspace's name and address (``slug``, derived from the name when empty)."""
    check_workspace_admin(actor)
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A workspace needs a name.", field="name")
    if len(name) > 80:
        raise InvalidInput("A workspace name is at most 80 characters.", field="name")
    slug = slug.strip().lower() or slugify(name)[:50].strip("-")
    if not _SLUG.match(slug):
        raise InvalidInput(
            "An address is 3 to 50 lowercase letters, digits or dashes, starting and ending with a letter or digit.",
            field="slug",
        )
    taken = InvalidInput("That address is taken; choose another.", code="slug_taken", field="slug")
    if slug in RESERVED_SLUGS:
        raise taken
    workspace = actor.workspace
    if Workspace.objects.filter(slug=slug).exclude(pk=workspace.pk).exists():
        raise taken
    try:
        with transaction.atomic():
            Workspace.objects.filter(pk=workspace.pk).update(name=name, slug=slug)
    except IntegrityError:
        raise taken from None
    workspace.name, workspace.slug = name, slug
    log.info("workspace_renamed", workspace_id=workspace.pk, actor_id=actor.user_id)
    return workspace


def membership_make_default(*, user: User, workspace_id: int) -> None:
    """Make ``workspace_id`` the one ``user`` lands in after signing in."""
    with transaction.atomic():
        Membership.objects.filter(user=user, is_default=True).exclude(workspace_id=workspace_id).update(
            is_default=False
        )
        Membership.objects.filter(user=user, workspace_id=workspace_id).update(is_default=True)
