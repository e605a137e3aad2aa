"""The /ws/ protocol through Channels' WebsocketCommunicator, on the real channel layer."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from mathia.chat.models import Message
from tests.chat_helpers import make_chat_team
from tests.helpers import make_user
from tests.ws import connect

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def team() -> dict[str, Any]:
    return make_chat_team()


async def test_anonymous_socket_is_closed_with_4401() -> None:
    socket = await connect(None)
    output = await socket.communicator.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": 4401}


async def test_stale_or_deactivated_sessions_are_closed_with_4401(team: dict[str, Any]) -> None:
    from channels.testing import WebsocketCommunicator

    from mathia.asgi import application
    from tests.ws import session_cookie

    async def closes_with_4401(cookie: str) -> bool:
        communicator = WebsocketCommunicator(
            application, "/ws/", headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", f"sessionid={cookie}".encode())]
        )
        await communicator.connect()
        output = await communicator.receive_output(timeout=2)
        await communicator.disconnect()
        return output == {"type": "websocket.close", "code": 4401}

    cookie = await session_cookie(team["bob"])

    def change_password() -> None:
        team["bob"].set_password("a-new-passphrase-after-a-leak")
        team["bob"].save()

    await database_sync_to_async(change_password)()  # signs out every other session
    assert await closes_with_4401(cookie)
    cookie = await session_cookie(team["cy"])
    team["cy"].is_active = False
    await database_sync_to_async(team["cy"].save)()
    assert await closes_with_4401(cookie)
    assert await closes_with_4401("not-a-session")


async def test_foreign_origin_is_refused(team: dict[str, Any]) -> None:
    from channels.testing import WebsocketCommunicator

    from mathia.asgi import application
    from tests.ws import session_cookie

    cookie = await session_cookie(team["ada"])
    communicator = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", b"https://evil.example"), (b"cookie", f"sessionid={cookie}".encode())]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_send_reaches_every_subscriber_once_and_is_stored_once(team: dict[str, Any]) -> None:
    ada, bob = await connect(team["ada"]), await connect(team["bob"])
    room_id = team["general"].pk
    for socket in (ada, bob):
        subscribed = await socket.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
        assert subscribed["rooms"][0]["id"] == room_id
    ack = await ada.request({"type": "send", "room_id": room_id, "client_id": "c-1", "body": "Hello **Bob**"}, "ack")
    assert ack["duplicate"] is False
    message = ack["message"]
    assert message["html"] == "<p>Hello <strong>Bob</strong></p>"
    for socket in (ada, bob):
        event = await socket.recv_until("message.new")
        assert event["message"]["id"] == message["id"]
        assert event["version"] == message["version"]
        await socket.nothing_more()
    assert await database_sync_to_async(Message.objects.count)() == 1
    await ada.close()
    await bob.close()


async def test_retried_send_with_the_same_client_id_is_idempotent(team: dict[str, Any]) -> None:
    ada, bob = await connect(team["ada"]), await connect(team["bob"])
    room_id = team["general"].pk
    await bob.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    frame = {"type": "send", "room_id": room_id, "client_id": "retry-me", "body": "once"}
    first = await ada.request(dict(frame), "ack")
    second = await ada.request(dict(frame), "ack")
    assert second["duplicate"] is True
    assert second["message"]["id"] == first["message"]["id"]
    await bob.recv_until("message.new")
    await bob.nothing_more()
    assert await database_sync_to_async(Message.objects.filter(client_id="retry-me").count)() == 1
    other_room = await ada.request({**frame, "room_id": team["secret"].pk}, "ack")
    assert other_room["type"] == "error"
    assert other_room["code"] == "invalid"
    await ada.close()
    await bob.close()


async def test_a_resend_after_leaving_a_private_room_reads_nothing_back(team: dict[str, Any]) -> None:
    from mathia.rooms.actions import room_leave

    bob = await connect(team["bob"])
    frame = {"type": "send", "room_id": team["secret"].pk, "client_id": "left-1", "body": "secret plans"}
    assert (await bob.request(dict(frame), "ack"))["type"] == "ack"
    await database_sync_to_async(room_leave)(user=team["bob"], room_id=team["secret"].pk)
    reply = await bob.request(dict(frame))
    assert reply["type"] == "error"
    assert reply["code"] == "not_found"
    await bob.close()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ('["a list"]', "unknown_type"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "send", "room_id": "1", "client_id": "x", "body": "hi"}', "invalid_frame"),
        ('{"type": "send", "room_id": 1, "client_id": "x", "body": "hi", "admin": true}', "invalid_frame"),
        ('{"type": "subscribe", "rooms": []}', "invalid_frame"),
        ('{"type": "history", "room_id": 1, "limit": 5000}', "invalid_frame"),
        ('{"type": "send", "room_id": 1, "client_id": "x", "body": "' + "x" * 40_000 + '"}', "frame_too_large"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(team: dict[str, Any], raw: str, code: str) -> None:
    socket = await connect(team["ada"])
    await socket.communicator.send_to(text_data=raw)
    error = await socket.recv_until("error")
    assert error["code"] == code
    assert error["message"]
    pong = await socket.request({"type": "ping"}, "pong")
    assert pong["type"] == "pong"
    await socket.close()


async def test_a_flood_closes_the_socket_with_1008(team: dict[str, Any]) -> None:
    socket = await connect(team["ada"])
    for _ in range(200):
        await socket.communicator.send_to(text_data='{"type": "ping"}')
    while True:
        output = await socket.communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            assert output["code"] == 1008
            break


async def test_outsiders_get_not_found_for_every_frame_type(team: dict[str, Any]) -> None:
    message = await database_sync_to_async(_post)(team["ada"], team["secret"].pk, "private words")
    outsider = await connect(team["cy"])  # in the workspace, not in the private room
    stranger = await connect(await database_sync_to_async(make_user)())  # not even in the workspace
    secret, general = team["secret"].pk, team["general"].pk
    frames = [
        {"type": "subscribe", "rooms": [secret]},
        {"type": "send", "room_id": secret, "client_id": "x1", "body": "let me in"},
        {"type": "edit", "message_id": message.pk, "body": "changed"},
        {"type": "delete", "message_id": message.pk},
        {"type": "react", "message_id": message.pk, "emoji": "👍"},
        {"type": "read", "room_id": secret, "seq": 1},
        {"type": "typing", "room_id": secret},
        {"type": "history", "room_id": secret},
        {"type": "sync", "rooms": {str(secret): 0}},
    ]
    for socket in (outsider, stranger):
        for frame in frames:
            reply = await socket.request(dict(frame))
            assert reply["type"] == "error", (frame, reply)
            assert reply["code"] == "not_found", (frame, reply)
    # The stranger does not see public rooms of a workspace they are not in either.
    reply = await stranger.request({"type": "history", "room_id": general})
    assert reply["code"] == "not_found"
    # A workspace member may read a public room but must join it to post.
    history = await outsider.request({"type": "history", "room_id": general}, "history")
    assert history["type"] == "history"
    reply = await outsider.request({"type": "send", "room_id": general, "client_id": "x2", "body": "hi"})
    assert reply["code"] == "not_member"
    await database_sync_to_async(message.refresh_from_db)()
    assert message.body == "private words"
    assert message.deleted_at is None
    await outsider.close()
    await stranger.close()


def _post(user: Any, room_id: int, body: str, client_id: str | None = None) -> Message:
    from mathia.chat.actions import message_send

    payload, _ = message_send(
        user=user, room_id=room_id, body=body, client_id=client_id or f"seed-{body[:20]}-{room_id}".replace(" ", "_")
    )
    return Message.objects.get(pk=payload["id"])


async def test_history_pages_newest_first_with_keyset_cursor(team: dict[str, Any], settings: Any) -> None:
    settings.MESSAGE_RATE_LIMIT = "1000/10s"
    room_id = team["general"].pk
    await database_sync_to_async(_seed)(team["ada"], room_id, 120)
    socket = await connect(team["bob"])
    first = await socket.request({"type": "history", "room_id": room_id, "limit": 50}, "history")
    assert [m["body"] for m in first["messages"]] == [f"m{i}" for i in range(70, 120)]
    assert first["has_more"] is True
    second = await socket.request(
        {"type": "history", "room_id": room_id, "before_seq": first["messages"][0]["seq"], "limit": 50}, "history"
    )
    assert [m["body"] for m in second["messages"]] == [f"m{i}" for i in range(20, 70)]
    third = await socket.request(
        {"type": "history", "room_id": room_id, "before_seq": second["messages"][0]["seq"], "limit": 50}, "history"
    )
    assert [m["body"] for m in third["messages"]] == [f"m{i}" for i in range(20)]
    assert third["has_more"] is False
    await socket.close()


def _seed(user: Any, room_id: int, n: int) -> None:
    for i in range(n):
        _post(user, room_id, f"m{i}", client_id=f"seed-{i}")


async def test_reconnect_catches_up_with_no_gap_and_no_duplicate(team: dict[str, Any]) -> None:
    room_id = team["general"].pk
    bob = await connect(team["bob"])
    subscribed = await bob.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    seen_version = subscribed["rooms"][0]["version"]
    early = await database_sync_to_async(_post)(team["ada"], room_id, "before the drop")
    event = await bob.recv_until("message.new")
    seen_version = event["version"]
    await bob.close()  # Bob's train enters a tunnel

    ada = await connect(team["ada"])
    new1 = (await ada.request({"type": "send", "room_id": room_id, "client_id": "t1", "body": "one"}, "ack"))["message"]
    new2 = (await ada.request({"type": "send", "room_id": room_id, "client_id": "t2", "body": "two"}, "ack"))["message"]
    await ada.request({"type": "edit", "message_id": early.pk, "body": "before the drop (edited)"}, "ack")
    await ada.request({"type": "edit", "message_id": new1["id"], "body": "one (edited)"}, "ack")
    await ada.request({"type": "delete", "message_id": new2["id"]}, "ack")
    await ada.close()

    bob = await connect(team["bob"])
    await bob.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    caught_up = await bob.request({"type": "sync", "rooms": {str(room_id): seen_version}}, "sync")
    assert caught_up["complete"] is True
    messages = caught_up["messages"]
    ids = [m["id"] for m in messages]
    assert sorted(ids) == sorted({early.pk, new1["id"], new2["id"]})
    assert len(ids) == len(set(ids)), "each changed message exactly once"
    versions = [m["version"] for m in messages]
    assert versions == sorted(versions)
    by_id = {m["id"]: m for m in messages}
    assert by_id[early.pk]["body"] == "before the drop (edited)"
    assert by_id[new1["id"]]["body"] == "one (edited)"
    assert by_id[new2["id"]]["deleted"] is True
    assert by_id[new2["id"]]["body"] == ""
    assert caught_up["version"] == max(versions)
    nothing = await bob.request({"type": "sync", "rooms": {str(room_id): caught_up["version"]}}, "sync")
    assert nothing["messages"] == []
    await bob.close()


async def test_edit_delete_and_reactions_follow_the_rules(team: dict[str, Any]) -> None:
    room_id = team["general"].pk
    ada, bob = await connect(team["ada"]), await connect(team["bob"])
    await ada.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    bobs = (await bob.request({"type": "send", "room_id": room_id, "client_id": "b1", "body": "typo"}, "ack"))[
        "message"
    ]
    await ada.recv_until("message.new")
    # Only the author edits.
    assert (await ada.request({"type": "edit", "message_id": bobs["id"], "body": "hacked"}))["code"] == "forbidden"
    edited = await bob.request({"type": "edit", "message_id": bobs["id"], "body": "fixed"}, "ack")
    assert edited["message"]["edited_at"]
    assert (await ada.recv_until("message.updated"))["message"]["body"] == "fixed"
    # Reactions toggle and are broadcast.
    reacted = await ada.request({"type": "react", "message_id": bobs["id"], "emoji": "🎉"}, "ack")
    assert reacted["message"]["reactions"] == [{"emoji": "🎉", "user_ids": [team["ada"].pk], "count": 1}]
    assert (await ada.request({"type": "react", "message_id": bobs["id"], "emoji": "lol"}))["code"] == "invalid"
    removed = await ada.request({"type": "react", "message_id": bobs["id"], "emoji": "🎉", "present": False}, "ack")
    assert removed["message"]["reactions"] == []
    # The room owner (a moderator) deletes Bob's message; a tombstone remains.
    deleted = await ada.request({"type": "delete", "message_id": bobs["id"]}, "ack")
    assert deleted["message"]["deleted"] is True
    tombstone = await ada.recv_until("message.deleted")
    assert tombstone["message"]["html"] == ""
    # Bob cannot delete Ada's messages.
    adas = (await ada.request({"type": "send", "room_id": room_id, "client_id": "a1", "body": "mine"}, "ack"))[
        "message"
    ]
    assert (await bob.request({"type": "delete", "message_id": adas["id"]}))["code"] == "forbidden"
    await ada.close()
    await bob.close()


async def test_rate_limit_answers_with_retry_after(team: dict[str, Any], settings: Any) -> None:
    settings.MESSAGE_RATE_LIMIT = "3/10s"
    socket = await connect(team["ada"])
    room_id = team["general"].pk
    for i in range(3):
        assert (await socket.request({"type": "send", "room_id": room_id, "client_id": f"rl{i}", "body": "x"}))[
            "type"
        ] == "ack"
    error = await socket.request({"type": "send", "room_id": room_id, "client_id": "rl9", "body": "x"})
    assert error["code"] == "rate_limited"
    assert 0 < error["retry_after"] <= 10
    assert "try again in" in error["message"]
    await socket.close()


async def test_typing_is_broadcast_throttled_and_expires(team: dict[str, Any]) -> None:
    room_id = team["general"].pk
    ada, bob = await connect(team["ada"]), await connect(team["bob"])
    await ada.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    await bob.send({"type": "typing", "room_id": room_id})
    typing = await ada.recv_until("typing")
    assert typing["user"]["id"] == team["bob"].pk
    assert typing["expires_in"] == 6
    await bob.send({"type": "typing", "room_id": room_id})  # within the throttle window
    await ada.nothing_more(ignore=("presence",))
    late = await connect(team["cy"])
    snapshot = await late.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    assert snapshot["typing"] == {str(room_id): [team["bob"].pk]}
    for s in (ada, bob, late):
        await s.close()


async def _presence_of(socket: Any, user_id: int) -> str:
    while True:
        frame = await socket.recv_until("presence", timeout=4)
        if str(user_id) in frame["users"]:
            return str(frame["users"][str(user_id)])


async def test_presence_online_away_offline_coalesced(team: dict[str, Any]) -> None:
    ada = await connect(team["ada"])
    bob = await connect(team["bob"])
    assert await _presence_of(ada, team["bob"].pk) == "online"
    await bob.send({"type": "presence", "status": "away"})
    assert await _presence_of(ada, team["bob"].pk) == "away"
    await bob.close()
    assert await _presence_of(ada, team["bob"].pk) == "offline"
    # Many changes inside one second arrive as one frame.
    sockets = [await connect(team["cy"]), await connect(team["bob"])]
    frame = await ada.recv_until("presence", timeout=4)
    if len(frame["users"]) < 2:
        frame["users"].update((await ada.recv_until("presence", timeout=4))["users"])
    assert frame["users"][str(team["cy"].pk)] == "online"
    assert frame["users"][str(team["bob"].pk)] == "online"
    for s in (*sockets, ada):
        await s.close()


async def test_read_marker_reaches_the_users_other_tabs(team: dict[str, Any]) -> None:
    room_id = team["general"].pk
    message = await database_sync_to_async(_post)(team["ada"], room_id, "read me")
    tab1, tab2 = await connect(team["bob"]), await connect(team["bob"])
    ack = await tab1.request({"type": "read", "room_id": room_id, "seq": message.seq}, "ack")
    assert ack["seq"] == message.seq
    marker = await tab2.recv_until("read")
    assert marker == {"type": "read", "room_id": room_id, "seq": message.seq}
    for s in (tab1, tab2):
        await s.close()


async def test_leaving_a_private_room_stops_its_events(team: dict[str, Any]) -> None:
    from mathia.rooms.actions import room_leave

    room_id = team["secret"].pk
    bob = await connect(team["bob"])
    await bob.request({"type": "subscribe", "rooms": [room_id]}, "subscribed")
    await database_sync_to_async(room_leave)(user=team["bob"], room_id=room_id)
    assert (await bob.recv_until("room.left"))["room_id"] == room_id
    await database_sync_to_async(_post)(team["ada"], room_id, "after bob left")
    await bob.nothing_more(ignore=("presence", "typing", "room.member_left"))
    await bob.close()
