"""The one access check for rooms. Every view, frame, task and tool reaches a room here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from django.db.models import OuterRef, Subquery

from mathia.core.errors import NotFound, PermissionDenied
from mathia.rooms.models import MODERATOR_ROLES, Room, RoomKind, RoomMembership
from mathia.workspaces.models import ADMIN_ROLES, Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User

Need = Literal["read", "write", "moderate"]
ROOM_NOT_FOUND = "Room not found."


@dataclass(frozen=True)
class RoomAccess:
    """What ``user`` may do in ``room``: the answer of :func:`access_room_for_user`."""

    room: Room
    user_id: int
    room_role: str | None
    workspace_role: str
    last_read_seq: int

    @property
    def is_member(self) -> bool:
        return self.room_role is not None

    @property
    def can_write(self) -> bool:
        return self.is_member and not self.room.is_archived

    @property
    def can_moderate(self) -> bool:
        if self.room_role in MODERATOR_ROLES:
            return True
        return self.workspace_role in ADMIN_ROLES and self.room.kind != RoomKind.DIRECT


def _rooms_with_roles(user: User, room_ids: list[int]) -> list[Room]:
    room_membership = RoomMembership.objects.filter(room=OuterRef("pk"), user=user)
    return list(
        Room.objects.filter(pk__in=room_ids).annotate(
            workspace_role=Subquery(
                Membership.objects.filter(workspace=OuterRef("workspace_id"), user=user).values("role")[:1]
            ),
            room_role=Subquery(room_membership.values("role")[:1]),
            last_read_seq_for_user=Subquery(room_membership.values("last_read_seq")[:1]),
        )
    )


def _visible_access(room: Room, user: User) -> RoomAccess | None:
    """The rule: the user's workspace, and for a private or direct room, its members only."""
    if room.workspace_role is None:  # type: ignore[attr-defined]
        return None
    if room.kind != RoomKind.PUBLIC and room.room_role is None:  # type: ignore[attr-defined]
        return None
    return RoomAccess(
        room=room,
        user_id=user.pk,
        room_role=room.room_role,  # type: ignore[attr-defined]
        workspace_role=room.workspace_role,  # type: ignore[attr-defined]
        last_read_seq=room.last_read_seq_for_user or 0,  # type: ignore[attr-defined]
    )


def _usable(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active)


def access_room_for_user(*, user: User, room_id: int, need: Need = "read") -> RoomAccess:
    """Fetch ``room_id`` for ``user`` and check they may ``need`` it, in one query.

    A room that does not exist, one in a workspace the user is not in, and a private or
    direct room they are not a member of all raise the same :class:`NotFound`.
    """
    if not isinstance(room_id, int) or room_id <= 0 or not _usable(user):
        raise NotFound(ROOM_NOT_FOUND)
    rooms = _rooms_with_roles(user, [room_id])
    access = _visible_access(rooms[0], user) if rooms else None
    if access is None:
        raise NotFound(ROOM_NOT_FOUND)
    if need == "write":
        check_can_write(access)
    elif need == "moderate" and not access.can_moderate:
        raise PermissionDenied("Only the room's owner and moderators can do that.")
    return access


def access_rooms_for_user(*, user: User, room_ids: list[int]) -> dict[int, RoomAccess]:
    """:func:`access_room_for_user` (read) for many rooms in one query: the rooms ``user`` may see.

    Rooms missing from the answer are "not found", for the same reasons.
    """
    wanted = [room_id for room_id in dict.fromkeys(room_ids) if isinstance(room_id, int) and room_id > 0]
    if not wanted or not _usable(user):
        return {}
    result = {}
    for room in _rooms_with_roles(user, wanted):
        access = _visible_access(room, user)
        if access is not None:
            result[room.pk] = access
    return result


def check_can_write(access: RoomAccess) -> None:
    if not access.is_member:
        raise PermissionDenied("Join this room to take part in it.", code="not_member")
    if access.room.is_archived:
        raise PermissionDenied("This room is archived; unarchive it to post.", code="room_archived")
