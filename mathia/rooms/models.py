from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class RoomKind(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"
    DIRECT = "direct", "Direct message"


class RoomRole(models.TextChoices):
    OWNER = "owner", "Owner"
    MODERATOR = "moderator", "Moderator"
    MEMBER = "member", "Member"


MODERATOR_ROLES = frozenset({RoomRole.OWNER, RoomRole.MODERATOR})
ROOM_NAME_MAX = 80
ROOM_TOPIC_MAX = 250
DIRECT_MAX_MEMBERS = 8


class Room(models.Model):
    """A conversation. ``last_version`` is the room's change counter (see chat.Message)."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="rooms")
    kind = models.CharField(max_length=8, choices=RoomKind.choices, default=RoomKind.PUBLIC)
    name = models.CharField(max_length=ROOM_NAME_MAX, blank=True)
    topic = models.CharField(max_length=ROOM_TOPIC_MAX, blank=True)
    # For direct rooms: the sorted member ids, so the same people always share one room.
    direct_key = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    last_version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                "workspace",
                Lower("name"),
                condition=~Q(kind="direct"),
                name="room_unique_name_per_workspace",
            ),
            models.UniqueConstraint(
                fields=["workspace", "direct_key"], condition=Q(kind="direct"), name="room_unique_direct_members"
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"room {self.pk}"

    @property
    def is_direct(self) -> bool:
        return self.kind == RoomKind.DIRECT

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class RoomMembership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_memberships")
    role = models.CharField(max_length=12, choices=RoomRole.choices, default=RoomRole.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    # The highest message seq this member has read; unread = messages after it.
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="room_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.role})"

    @property
    def is_moderator(self) -> bool:
        return self.role in MODERATOR_ROLES


class Invite(models.Model):
    """A link (or an email) that lets someone join a room, and its workspace."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(blank=True, help_text="Set for invitations sent by email.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means unlimited.")
    uses = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invite to {self.room_id}"
