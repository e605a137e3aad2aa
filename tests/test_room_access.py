"""The one room access rule, in its single and set forms."""

from __future__ import annotations

from typing import Any

import pytest

from mathia.core.errors import NotFound
from mathia.rooms.access import access_room_for_user, access_rooms_for_user
from mathia.rooms.models import RoomKind
from tests.chat_helpers import make_chat_team, make_room, make_team

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
