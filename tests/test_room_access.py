"""The one room access rule, in its single and set forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from mathia.core.errors import NotFound, PermissionDenied
from mathia.rooms.access import access_room_for_user, access_rooms_for_user
from mathia.rooms.actions import direct_room_open, room_set_archived
from mathia.rooms.models import Room, RoomKind, RoomMembership
from mathia.workspaces.actions import membership_add
from mathia.workspaces.models import Membership, Role
from tests.chat_helpers import make_chat_team, make_room, make_team
from tests.helpers import make_user

pytestmark = [pytest.mark.django_db]


def test_the_set_form_answers_exactly_as_the_single_check(django_assert_num_queries: Any) -> None:
    team = make_chat_team()
    other_workspace, (stranger,) = make_team(1, workspace_name="Elsewhere")
    elsewhere = make_room(stranger, other_workspace, "elsewhere")
    hidden = make_room(team["ada"], team["workspace"], "hidden", kind=RoomKind.PRIVATE)
    candidates = [team["general"].pk, team["secret"].pk, hidden.pk, elsewhere.pk, 999_999, -1]
    for user in (team["ada"], team["bob"], team["cy"], stranger):
        single = set()
        for room_id in candidates:
            try:
                access_room_for_user(user=user, room_id=room_id)
                single.add(room_id)
            except NotFound:
                pass
        with django_assert_num_queries(1):
            batch = access_rooms_for_user(user=user, room_ids=candidates)
        assert set(batch) == single
        for room_id, access in batch.items():
            assert access.room_role == access_room_for_user(user=user, room_id=room_id).room_role
    assert set(access_rooms_for_user(user=team["cy"], room_ids=candidates)) == {team["general"].pk}


def _outcome(user: Any, room_id: Any, need: Any = "read") -> str:
    """What the check answers, as one word: ok, not_found, or the PermissionDenied code."""
    try:
        access_room_for_user(user=user, room_id=room_id, need=need)
    except NotFound:
        return "not_found"
    except PermissionDenied as error:
        return error.code
    return "ok"


def test_who_may_read_write_and_moderate_each_kind_of_room() -> None:
    team = make_chat_team()
    workspace, ada, bob, cy = team["workspace"], team["ada"], team["bob"], team["cy"]
    di = make_user(display_name="Di")
    membership_add(workspace=workspace, user=di, role=Role.ADMIN)
    direct = direct_room_open(user=bob, workspace_slug=workspace.slug, user_ids=[ada.pk])
    archived = make_room(ada, workspace, "old", members=[bob])
    room_set_archived(user=ada, room_id=archived.pk, archived=True)
    _, (stranger,) = make_team(1, workspace_name="Elsewhere")
    general, secret = team["general"].pk, team["secret"].pk
    expected = {
        # (user, room): (read, write, moderate)
        (ada, general): ("ok", "ok", "ok"),  # the room's owner
        (bob, general): ("ok", "ok", "forbidden"),  # a member
        (cy, general): ("ok", "not_member", "forbidden"),  # in the workspace only: may look, not post
        (di, general): ("ok", "not_member", "ok"),  # a workspace admin moderates public rooms
        (bob, secret): ("ok", "ok", "forbidden"),
        (cy, secret): ("not_found", "not_found", "not_found"),  # private: members only
        (di, secret): ("not_found", "not_found", "not_found"),  # ... even for a workspace admin
        (ada, direct.pk): ("ok", "ok", "forbidden"),  # no owner, and no admin rights, in a direct room
        (cy, direct.pk): ("not_found", "not_found", "not_found"),
        (di, direct.pk): ("not_found", "not_found", "not_found"),
        (bob, archived.pk): ("ok", "room_archived", "forbidden"),
        (ada, archived.pk): ("ok", "room_archived", "ok"),
        (cy, archived.pk): ("ok", "not_member", "forbidden"),  # not a member comes first
        (stranger, general): ("not_found", "not_found", "not_found"),  # another workspace
        (ada, 999_999): ("not_found", "not_found", "not_found"),
    }
    for (user, room_id), answers in expected.items():
        got = tuple(_outcome(user, room_id, need) for need in ("read", "write", "moderate"))
        assert got == answers, (user.display_name, room_id)


def test_a_room_member_who_left_the_workspace_no_longer_finds_the_room() -> None:
    team = make_chat_team()
    bob = team["bob"]
    Membership.objects.filter(workspace=team["workspace"], user=bob).delete()
    assert RoomMembership.objects.filter(room=team["general"], user=bob).exists()
    for room in (team["general"], team["secret"]):
        assert _outcome(bob, room.pk) == "not_found"
    assert access_rooms_for_user(user=bob, room_ids=[team["general"].pk, team["secret"].pk]) == {}


def test_inactive_and_anonymous_users_and_odd_ids_find_nothing() -> None:
    team = make_chat_team()
    general = team["general"].pk
    ada = team["ada"]
    for room_id in (0, -1, "1", str(general), None, 1.0):
        assert _outcome(ada, room_id) == "not_found"
    assert access_rooms_for_user(user=ada, room_ids=[0, -1, "1", None]) == {}  # type: ignore[list-item]
    assert access_rooms_for_user(user=ada, room_ids=[]) == {}
    anonymous = AnonymousUser()
    assert _outcome(anonymous, general) == "not_found"
    assert access_rooms_for_user(user=anonymous, room_ids=[general]) == {}
    ada.is_active = False
    ada.save()
    assert _outcome(ada, general) == "not_found"
    assert access_rooms_for_user(user=ada, room_ids=[general]) == {}


def test_the_answer_carries_roles_and_the_read_marker() -> None:
    team = make_chat_team()
    general = team["general"]
    RoomMembership.objects.filter(room=general, user=team["bob"]).update(last_read_seq=7)
    owner = access_room_for_user(user=team["ada"], room_id=general.pk)
    assert (owner.room_role, owner.workspace_role, owner.user_id) == ("owner", "owner", team["ada"].pk)
    member = access_room_for_user(user=team["bob"], room_id=general.pk)
    assert (member.room_role, member.workspace_role, member.last_read_seq) == ("member", "member", 7)
    looker = access_room_for_user(user=team["cy"], room_id=general.pk)
    assert (looker.room_role, looker.is_member, looker.last_read_seq) == (None, False, 0)
    batch = access_rooms_for_user(user=team["bob"], room_ids=[general.pk, general.pk, team["secret"].pk])
    assert [access.last_read_seq for access in batch.values()] == [7, 0]
    assert {room_id: access.room_role for room_id, access in batch.items()} == {
        general.pk: "member",
        team["secret"].pk: "member",
    }


def test_one_query_per_check_and_the_room_comes_whole(django_assert_num_queries: Any) -> None:
    team = make_chat_team()
    ada = team["ada"]
    rooms = [team["general"], team["secret"], *(make_room(ada, team["workspace"], f"room {n}") for n in range(4))]
    room_set_archived(user=ada, room_id=rooms[-1].pk, archived=True)  # a set archived_at to load too
    fields = [field.attname for field in Room._meta.concrete_fields]
    stored = {
        room.pk: [getattr(room, name) for name in fields] for room in Room.objects.filter(pk__in=[r.pk for r in rooms])
    }
    for need in ("read", "write", "moderate"):
        with django_assert_num_queries(1):
            access = access_room_for_user(user=ada, room_id=rooms[0].pk, need=need)  # type: ignore[arg-type]
            assert [getattr(access.room, name) for name in fields] == stored[rooms[0].pk]
    with django_assert_num_queries(1):
        batch = access_rooms_for_user(user=ada, room_ids=[room.pk for room in rooms])
        assert {room_id: [getattr(a.room, name) for name in fields] for room_id, a in batch.items()} == stored
    assert all(isinstance(a.room, Room) and not a.room.get_deferred_fields() for a in batch.values())
    assert list(batch) == [room.pk for room in Room.objects.filter(pk__in=[r.pk for r in rooms])]  # the rooms' order


def test_ids_are_bound_as_integers_as_the_orm_did() -> None:
    """``True`` is an ``int`` to the guard; PostgreSQL must see 1, not a boolean it refuses."""
    team = make_chat_team()
    assert _outcome(team["ada"], True) == _outcome(team["ada"], 1)
    assert list(access_rooms_for_user(user=team["ada"], room_ids=[True])) == list(
        access_rooms_for_user(user=team["ada"], room_ids=[1])
    )
