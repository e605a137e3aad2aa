"""The chat tools the router offers (MCP clients, the model): what each person may read."""

from __future__ import annotations

import pytest

from mathia.assistant.identity import assistant_user
from mathia.chat.actions import internal_message_post, message_send
from mathia.tools.registry import ToolContext
from mathia.tools.router import invoke_sync
from tests.chat_helpers import make_chat_team

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_room_messages_shows_a_private_message_to_its_owner_only() -> None:
    team = make_chat_team()
    general = team["general"]
    message_send(user=team["ada"], room_id=general.pk, client_id="c1", body="hello all")
    internal_message_post(
        author=assistant_user(), room_id=general.pk, body="Reminder: call John", visible_to_id=team["bob"].pk
    )

    def bodies(who: str) -> list[str]:
        ctx = ToolContext(user=team[who], workspace_id=team["workspace"].pk, room_id=general.pk, via="mcp")
        result = invoke_sync("room_messages", {"limit": 10}, ctx=ctx)
        assert result.is_ok, result
        return [m["body"] for m in result.data["messages"]]

    assert bodies("bob") == ["hello all", "Reminder: call John"]
    assert bodies("ada") == ["hello all"]
