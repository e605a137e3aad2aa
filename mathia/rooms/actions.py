"""Writes for rooms, room membership and invites. Room events are published after commit."""

from __future__ import annotations

import secrets
import smtplib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F

from mathia.core.clock import Clock, system_clock
from mathia.core.errors import AppError, InvalidInput, NotFound, PermissionDenied
from mathia.realtime.events import publish_on_commit, room_group, user_group
from mathia.rooms.access import RoomAccess, access_room_for_user
from mathia.rooms.models import (
    DIRECT_MAX_MEMBERS,
    ROOM_NAME_MAX,
    ROOM_TOPIC_MAX,
    Invite,
    Room,
    RoomKind,
    RoomMembership,
    RoomRole,
)
from mathia.rooms.selectors import room_summary
from mathia.workspaces.access import access_workspace_for_user
from mathia.workspaces.models import Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

INVITE_DEFAULT_DAYS = 7
INVITE_MAX_DAYS = 90


def check_room_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A room needs a name.", field="name")
    if len(name) > ROOM_NAME_MAX:
        raise InvalidInput(f"A room name is at most {ROOM_NAME_MAX} characters.", field="name")
    return name


def check_topic(topic: str) -> str:
    topic = " ".join(topic.split())
    if len(topic) > ROOM_TOPIC_MAX:
        raise InvalidInput(f"A topic is at most {ROOM_TOPIC_MAX} characters.", field="topic")
    return topic


def room_create(*, user: User, workspace_slug: str, name: str, kind: str = RoomKind.PUBLIC, topic: str = "") -> Room:
    membership = access_workspace_for_user(user=user, slug=workspace_slug)
    if kind not in (RoomKind.PUBLIC, RoomKind.PRIVATE):
        raise InvalidInput("A room is public or private (direct messages are opened with people).", field="kind")
    name = check_room_name(name)
    topic = check_topic(topic)
    try:
        with transaction.atomic():
            room = Room.objects.create(
                workspace_id=membership.workspace_id, kind=kind, name=name, topic=topic, created_by=user
            )
            RoomMembership.objects.create(room=room, user=user, role=RoomRole.OWNER)
    except IntegrityError:
        raise InvalidInput(f"There is already a room called “{name}” in this workspace.", field="name") from None
    _notify_member_rooms_changed(room, [user.pk])
    log.info("room_created", room_id=room.pk, kind=kind, user_id=user.pk)
    return room


def direct_room_open(*, user: User, workspace_slug: str, user_ids: list[int]) -> Room:
    """The direct-message room between ``user`` and ``user_ids``, created the first time."""
    membership = access_workspace_for_user(user=user, slug=workspace_slug)
    people = sorted({int(uid) for uid in user_ids} | {user.pk})
    if len(people) < 2:
        raise InvalidInput("Choose at least one other person.", field="user_ids")
    if len(people) > DIRECT_MAX_MEMBERS:
        raise InvalidInput(f"A direct message has at most {DIRECT_MAX_MEMBERS} people.", field="user_ids")
    in_workspace = set(
        Membership.objects.filter(workspace_id=membership.workspace_id, user_id__in=people).values_list(
            "user_id", flat=True
        )
    )
    if in_workspace != set(people):
        raise NotFound("Someone you chose is not in this workspace.")
    key = ",".join(str(uid) for uid in people)
    existing = Room.objects.filter(workspace_id=membership.workspace_id, kind=RoomKind.DIRECT, direct_key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            room = Room.objects.create(
                workspace_id=membership.workspace_id, kind=RoomKind.DIRECT, direct_key=key, created_by=user
            )
            RoomMembership.objects.bulk_create([RoomMembership(room=room, user_id=uid) for uid in people])
    except IntegrityError:  # opened by someone else at the same moment
        return Room.objects.get(workspace_id=membership.workspace_id, kind=RoomKind.DIRECT, direct_key=key)
    _notify_member_rooms_changed(room, people)
    return room


def room_update(*, user: User, room_id: int, name: str | None = None, topic: str | None = None) -> Room:
    """Rename a room or set its topic. Any member can set the topic; renaming takes a moderator."""
    access = access_room_for_user(user=user, room_id=room_id, need="write")
    room = access.room
    fields = []
    if name is not None:
        if room.is_direct:
            raise InvalidInput("Direct messages have no name.", field="name")
        if not access.can_moderate:
            raise PermissionDenied("Only the room's owner and moderators can rename it.")
        room.name = check_room_name(name)
        fields.append("name")
    if topic is not None:
        room.topic = check_topic(topic)
        fields.append("topic")
    if fields:
        try:
            with transaction.atomic():
                room.save(update_fields=fields)
        except IntegrityError:
            raise InvalidInput(
                f"There is already a room called “{room.name}” in this workspace.", field="name"
            ) from None
        _publish_room_updated(room)
    return room


def room_set_archived(*, user: User, room_id: int, archived: bool, clock: Clock = system_clock) -> Room:
    access = access_room_for_user(user=user, room_id=room_id, need="moderate")
    room = access.room
    room.archived_at = clock.now() if archived else None
    room.save(update_fields=["archived_at"])
    _publish_room_updated(room)
    return room


def room_join(*, user: User, room_id: int) -> RoomAccess:
    """Join a public room (private rooms are joined through an invite)."""
    access = access_room_for_user(user=user, room_id=room_id)
    if access.is_member:
        return access
    if access.room.kind != RoomKind.PUBLIC:
        raise NotFound("Room not found.")
    _add_member(access.room, user)
    return access_room_for_user(user=user, room_id=room_id)


def room_leave(*, user: User, room_id: int) -> None:
    access = access_room_for_user(user=user, room_id=room_id)
    if not access.is_member:
        return
    with transaction.atomic():
        if access.room_role == RoomRole.OWNER and not access.room.is_direct:
            # The room keeps an owner: the longest-standing moderator, else member.
            others = (
                RoomMembership.objects.select_for_update()
                .filter(room_id=room_id)
                .exclude(user=user)
                .exclude(user__is_assistant=True)
            )
            successor = others.filter(role=RoomRole.MODERATOR).first() or others.first()
            if successor is not None:
                RoomMembership.objects.filter(pk=successor.pk).update(role=RoomRole.OWNER)
        RoomMembership.objects.filter(room_id=room_id, user=user).delete()
        publish_on_commit(room_group(room_id), {"type": "room.member_left", "room_id": room_id, "user_id": user.pk})
        publish_on_commit(
            user_group(user.pk),
            {"type": "room.left", "room_id": room_id},
            control={"unsubscribe": room_id},
        )


def room_set_member_role(*, user: User, room_id: int, member_id: int, role: str) -> RoomMembership:
    access = access_room_for_user(user=user, room_id=room_id, need="moderate")
    if role not in (RoomRole.MODERATOR, RoomRole.MEMBER):
        raise InvalidInput("A member's role is moderator or member.", field="role")
    target = RoomMembership.objects.filter(room_id=room_id, user_id=member_id).first()
    if target is None:
        raise NotFound("That person is not in this room.")
    if target.role == RoomRole.OWNER:
        raise PermissionDenied("The owner's role cannot be changed.")
    target.role = role
    target.save(update_fields=["role"])
    _publish_room_updated(access.room)
    return target


def _add_member(room: Room, user: User) -> None:
    with transaction.atomic():
        Membership.objects.get_or_create(workspace_id=room.workspace_id, user=user)
        _, created = RoomMembership.objects.get_or_create(
            room=room, user=user, defaults={"last_read_seq": room.last_version}
        )
    if created:
        publish_on_commit(
            room_group(room.pk),
            {"type": "room.member_joined", "room_id": room.pk, "user": {"id": user.pk, "name": user.name}},
        )
        _notify_member_rooms_changed(room, [user.pk])


def _publish_room_updated(room: Room) -> None:
    publish_on_commit(room_group(room.pk), {"type": "room.updated", "room": room_summary(room)})


def _notify_member_rooms_changed(room: Room, user_ids: list[int]) -> None:
    for uid in user_ids:
        publish_on_commit(user_group(uid), {"type": "room.joined", "room_id": room.pk})


# --- Invites ------------------------------------------------------------------------------


def invite_create(
    *,
    user: User,
    room_id: int,
    expires_in_days: int = INVITE_DEFAULT_DAYS,
    max_uses: int | None = None,
    email: str = "",
    clock: Clock = system_clock,
) -> Invite:
    access = access_room_for_user(user=user, room_id=room_id, need="write")
    if access.room.is_direct:
        raise InvalidInput("Direct messages cannot be joined by invite.")
    if not 1 <= expires_in_days <= INVITE_MAX_DAYS:
        raise InvalidInput(f"An invite lasts 1 to {INVITE_MAX_DAYS} days.", field="expires_in_days")
    if max_uses is not None and max_uses < 1:
        raise InvalidInput("Maximum uses must be at least 1 (or empty for unlimited).", field="max_uses")
    email = email.strip().lower()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput("That is not a valid email address.", field="email") from None
    return Invite.objects.create(
        room=access.room,
        token=secrets.token_urlsafe(24),
        created_by=user,
        email=email,
        expires_at=clock.now() + timedelta(days=expires_in_days),
        max_uses=1 if email else max_uses,
    )


class InviteEmailNotSent(AppError):
    code = "email_not_sent"
    http_status = 502


def invite_email_send(*, invite: Invite, inviter: User, accept_url: str) -> None:
    """Email an invitation created with an address (the link works once).

    Raises :class:`InviteEmailNotSent` when the mail server fails; the invite stays valid.
    """
    room = Room.objects.select_related("workspace").get(pk=invite.room_id)
    try:
        _send_invite_mail(invite, inviter, room, accept_url)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("invite_email_failed", invite_id=invite.pk, error=type(exc).__name__)
        raise InviteEmailNotSent(
            f"The invitation was created, but the email to {invite.email} could not be sent "
            "(the mail server did not accept it). Share the link instead."
        ) from None


def _send_invite_mail(invite: Invite, inviter: User, room: Room, accept_url: str) -> None:
    send_mail(
        subject=f"[Mathia] {inviter.name} invited you to {room.name}",
        message=(
            f"{inviter.name} invited you to the room “{room.name}” in {room.workspace.name}.\n\n"
            f"Join here: {accept_url}\n\nThe link works once and expires on {invite.expires_at:%Y-%m-%d}."
        ),
        from_email=None,
        recipient_list=[invite.email],
    )


def invite_revoke(*, user: User, invite_id: int, clock: Clock = system_clock) -> Invite:
    invite = Invite.objects.filter(pk=invite_id).first()
    if invite is None:
        raise NotFound("Invite not found.")
    access = access_room_for_user(user=user, room_id=invite.room_id)
    if invite.created_by_id != user.pk and not access.can_moderate:
        raise NotFound("Invite not found.")
    invite.revoked_at = invite.revoked_at or clock.now()
    invite.save(update_fields=["revoked_at"])
    return invite


def check_invite_usable(invite: Invite | None, *, clock: Clock = system_clock) -> Invite:
    if invite is None or invite.revoked_at is not None:
        raise NotFound("This invite link is not valid: it may have been revoked.", code="invite_invalid")
    if invite.expires_at <= clock.now():
        raise NotFound("This invite link has expired. Ask for a new one.", code="invite_expired")
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        raise NotFound("This invite link has been used up. Ask for a new one.", code="invite_used_up")
    return invite


def invite_accept(*, user: User, token: str, clock: Clock = system_clock) -> Room:
    """Join the invite's room (and its workspace). Accepting twice is harmless."""
    with transaction.atomic():
        invite = Invite.objects.select_for_update().select_related("room").filter(token=token).first()
        if invite is not None and RoomMembership.objects.filter(room=invite.room, user=user).exists():
            return invite.room
        check_invite_usable(invite, clock=clock)
        assert invite is not None
        if invite.email and invite.email != user.email:
            raise PermissionDenied(
                "This invitation was sent to another email address. Sign in as that person to accept it.",
                code="invite_other_email",
            )
        Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
        _add_member(invite.room, user)
    return invite.room


def invite_room_if_member(*, user: User, token: str) -> Room | None:
    """The invite's room when ``user`` is already in it (their link just takes them there)."""
    return Room.objects.filter(invites__token=token, memberships__user=user).select_related("workspace").first()


def invite_details(*, token: str, clock: Clock = system_clock) -> dict[str, Any]:
    """What the invite page shows before someone accepts (no access needed: the token is the key)."""
    invite = Invite.objects.select_related("room__workspace", "created_by").filter(token=token).first()
    invite = check_invite_usable(invite, clock=clock)
    return {
        "room_name": invite.room.name,
        "workspace_name": invite.room.workspace.name,
        "invited_by": invite.created_by.name,
        "expires_at": invite.expires_at,
    }
