"""Writes of the onboarding wizard: its rules live here; the views only parse and render."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from mathia.accounts.actions import user_onboarding_finish
from mathia.core.errors import InvalidInput
from mathia.rooms import actions as room_actions
from mathia.rooms.models import Invite, Room, RoomKind
from mathia.workspaces.actions import membership_make_default, workspace_rename
from mathia.workspaces.models import Membership, Workspace
from mathia.workspaces.selectors import default_membership

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

FIRST_ROOM = "general"
INVITES_AT_ONCE = 20
LINK_MAX_USES = 50
_INVITE_LINK = re.compile(r"/invite/([A-Za-z0-9_-]+)/?")


def onboarding_workspace(*, user: User) -> Membership:
    """The workspace the wizard sets up: the default one made at sign-up."""
    membership = default_membership(user=user)
    if membership is None:  # user_register always makes one
        raise InvalidInput("You have no workspace to set up.", code="no_workspace")
    return membership


def onboarding_first_room(*, workspace_id: int) -> Room | None:
    return Room.objects.filter(workspace_id=workspace_id, kind=RoomKind.PUBLIC, name=FIRST_ROOM).first()


def onboarding_workspace_setup(*, user: User, name: str, slug: str) -> Workspace:
    """Name the person's workspace, set its address, and give it a #general room to start in."""
    membership = onboarding_workspace(user=user)
    with transaction.atomic():
        workspace = workspace_rename(actor=membership, name=name, slug=slug)
        if onboarding_first_room(workspace_id=workspace.pk) is None:
            room_actions.room_create(user=user, workspace_slug=workspace.slug, name=FIRST_ROOM, kind=RoomKind.PUBLIC)
    return workspace


def invite_token_from(text: str) -> str:
    """The token in a pasted invitation link (or the token itself)."""
    match = _INVITE_LINK.search(text)
    return match.group(1) if match else text.strip()


def onboarding_join(*, user: User, token: str) -> Room:
    """Join the invited room; its workspace becomes the person's default, and onboarding ends."""
    with transaction.atomic():
        room = room_actions.invite_accept(user=user, token=token)
        membership_make_default(user=user, workspace_id=room.workspace_id)
        user_onboarding_finish(user=user)
    log.info("onboarding_joined", user_id=user.pk, room_id=room.pk)
    return room


def onboarding_finish(*, user: User) -> tuple[Workspace, Room | None]:
    """End the wizard for someone who set up their own workspace: where they land."""
    membership = onboarding_workspace(user=user)
    user_onboarding_finish(user=user)
    return membership.workspace, onboarding_first_room(workspace_id=membership.workspace_id)


def check_invite_emails(raw: str) -> list[str]:
    """The addresses in ``raw`` (commas, spaces or new lines), lowercased, each once."""
    emails = [e.strip() for e in re.split(r"[,\s;]+", raw) if e.strip()]
    bad = []
    for email in emails:
        try:
            validate_email(email)
        except ValidationError:
            bad.append(email)
    if bad:
        raise InvalidInput(f"Not an email address: {', '.join(bad[:5])}.", field="emails")
    if not emails:
        raise InvalidInput("Enter at least one email address.", field="emails")
    unique = list(dict.fromkeys(e.lower() for e in emails))
    if len(unique) > INVITES_AT_ONCE:
        raise InvalidInput(f"Invite at most {INVITES_AT_ONCE} people at once.", field="emails")
    return unique


@dataclass(frozen=True)
class EmailInvite:
    email: str
    error: str  # empty when the mail was sent


def onboarding_invite_emails(
    *, user: User, room: Room, raw: str, accept_url: Callable[[Invite], str]
) -> list[EmailInvite]:
    """Invite every address in ``raw`` to ``room``; nothing is sent when one address is wrong."""
    results = []
    for email in check_invite_emails(raw):
        invite = room_actions.invite_create(user=user, room_id=room.pk, email=email)
        try:
            room_actions.invite_email_send(invite=invite, inviter=user, accept_url=accept_url(invite))
        except room_actions.InviteEmailNotSent as error:
            results.append(EmailInvite(email=email, error=error.message))
        else:
            results.append(EmailInvite(email=email, error=""))
    return results


def onboarding_invite_link(*, user: User, room: Room) -> Invite:
    """A link to share with the team (several people, the usual expiry)."""
    return room_actions.invite_create(user=user, room_id=room.pk, max_uses=LINK_MAX_USES)
