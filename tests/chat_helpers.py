from __future__ import annotations

from typing import Any

from mathia.rooms import actions as room_actions
from mathia.rooms.models import Room, RoomKind
from mathia.workspaces.actions import membership_add
from mathia.workspaces.models import Workspace
from tests.helpers import make_user


def make_team(n: int = 3, *, workspace_name: str = "Acme") -> tuple[Workspace, list[Any]]:
    """A workspace owned by the first of ``n`` users, all members."""
    users = [make_user(display_name=name) for name in ["Ada", "Bob", "Cy", "Di", "Ed", "Flo"][:n]]
    from mathia.workspaces.actions import workspace_create

    workspace = workspace_create(owner=users[0], name=workspace_name)
    for user in users[1:]:
        membership_add(workspace=workspace, user=user)
    return workspace, users


def make_room(
    owner: Any, workspace: Workspace, name: str = "general", *, kind: str = RoomKind.PUBLIC, members: list[Any] = ()
) -> Room:  # type: ignore[assignment]
    room = room_actions.room_create(user=owner, workspace_slug=workspace.slug, name=name, kind=kind)
    for member in members:
        if kind == RoomKind.PUBLIC:
            room_actions.room_join(user=member, room_id=room.pk)
        else:
            invite = room_actions.invite_create(user=owner, room_id=room.pk)
            room_actions.invite_accept(user=member, token=invite.token)
    room.refresh_from_db()
    return room


def make_chat_team() -> dict[str, Any]:
    """Ada (owner) and Bob in #general and the private #secret; Cy only in the workspace."""
    workspace, (ada, bob, cy) = make_team(3)
    general = make_room(ada, workspace, "general", members=[bob])
    secret = make_room(ada, workspace, "secret", kind=RoomKind.PRIVATE, members=[bob])
    return {"workspace": workspace, "ada": ada, "bob": bob, "cy": cy, "general": general, "secret": secret}
