"""Rooms and invites over HTTP: the JSON API, the invite page, and the access check on each view."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from mathia.accounts.models import User
from mathia.rooms.models import Invite, Room, RoomMembership
from tests.chat_helpers import make_chat_team
from tests.helpers import assert_error, make_user

pytestmark = pytest.mark.django_db


def _json(client: Client, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    return getattr(client, method.lower())(
        url,
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )


@pytest.fixture
def team() -> dict[str, Any]:
    return make_chat_team()


def test_create_room_and_list_it_with_unread_counts(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    response = _json(
        client, "POST", f"/api/w/{team['workspace'].slug}/rooms", {"name": "  Design   review ", "kind": "private"}
    )
    assert response.status_code == 201
    room = response.json()["room"]
    assert room["name"] == "Design review"
    assert room["kind"] == "private"
    duplicate = _json(client, "POST", f"/api/w/{team['workspace'].slug}/rooms", {"name": "design REVIEW"})
    assert_error(duplicate, status=400, code="invalid")
    empty = _json(client, "POST", f"/api/w/{team['workspace'].slug}/rooms", {"name": " "})
    assert_error(empty, status=400, code="invalid")
    extra = _json(client, "POST", f"/api/w/{team['workspace'].slug}/rooms", {"name": "x", "owner": 1})
    assert_error(extra, status=400, code="invalid")
    rooms = _json(client, "GET", f"/api/w/{team['workspace'].slug}/rooms").json()["rooms"]
    assert [r["name"] for r in rooms] == ["Design review", "general", "secret"]


def test_sidebar_counts_unread_and_mentions(client: Client, team: dict[str, Any]) -> None:
    from mathia.chat.actions import message_send

    general = team["general"].pk
    message_send(user=team["ada"], room_id=general, body="hello all", client_id="u1")
    message_send(user=team["ada"], room_id=general, body="@Bob look", client_id="u2")
    client.force_login(team["bob"])
    rooms = {r["name"]: r for r in _json(client, "GET", f"/api/w/{team['workspace'].slug}/rooms").json()["rooms"]}
    assert rooms["general"]["unread"] == 2
    assert rooms["general"]["mentions"] == 1
    client.force_login(team["ada"])
    rooms = {r["name"]: r for r in _json(client, "GET", f"/api/w/{team['workspace'].slug}/rooms").json()["rooms"]}
    assert rooms["general"]["unread"] == 0  # your own messages are read


def test_rename_topic_archive_follow_roles(client: Client, team: dict[str, Any]) -> None:
    url = f"/api/rooms/{team['general'].pk}"
    client.force_login(team["bob"])
    assert _json(client, "PATCH", url, {"topic": "Weekly plans"}).status_code == 200
    assert_error(_json(client, "PATCH", url, {"name": "mine now"}), status=403, code="forbidden")
    assert_error(_json(client, "PATCH", url, {"archived": True}), status=403, code="forbidden")
    client.force_login(team["ada"])
    assert _json(client, "PATCH", url, {"name": "all-hands"}).json()["room"]["name"] == "all-hands"
    assert _json(client, "PATCH", url, {"archived": True}).json()["room"]["archived"] is True
    client.force_login(team["bob"])
    assert_error(_json(client, "PATCH", url, {"topic": "nope"}), status=403, code="room_archived")
    assert_error(_json(client, "PATCH", url, {"topic": "x" * 300}), status=403, code="room_archived")


def test_moderators_are_named_by_the_owner_and_can_then_moderate(client: Client, team: dict[str, Any]) -> None:
    from mathia.chat.actions import message_delete, message_send

    url = f"/api/rooms/{team['general'].pk}/members/{team['bob'].pk}/role"
    client.force_login(team["bob"])
    assert_error(_json(client, "POST", url, {"role": "moderator"}), status=403, code="forbidden")
    client.force_login(team["ada"])
    members = _json(client, "POST", url, {"role": "moderator"}).json()["members"]
    assert {m["name"]: m["role"] for m in members}["Bob"] == "moderator"
    assert_error(_json(client, "POST", url, {"role": "owner"}), status=400, code="invalid")
    owner_url = f"/api/rooms/{team['general'].pk}/members/{team['ada'].pk}/role"
    client.force_login(team["bob"])
    assert_error(_json(client, "POST", owner_url, {"role": "member"}), status=403, code="forbidden")
    payload, _ = message_send(user=team["ada"], room_id=team["general"].pk, body="owner's words", client_id="m1")
    assert message_delete(user=team["bob"], message_id=payload["id"])["deleted"] is True


def test_join_public_and_leave(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["cy"])
    browse = _json(client, "GET", f"/api/w/{team['workspace'].slug}/rooms/browse").json()["rooms"]
    assert [r["name"] for r in browse] == ["general"]  # never the private room
    assert _json(client, "POST", f"/api/rooms/{team['general'].pk}/join").status_code == 200
    assert RoomMembership.objects.filter(room=team["general"], user=team["cy"]).exists()
    assert_error(_json(client, "POST", f"/api/rooms/{team['secret'].pk}/join"), status=404, code="not_found")
    assert _json(client, "POST", f"/api/rooms/{team['general'].pk}/leave").status_code == 200
    assert not RoomMembership.objects.filter(room=team["general"], user=team["cy"]).exists()


def test_owner_leaving_hands_the_room_on(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    _json(client, "POST", f"/api/rooms/{team['general'].pk}/leave")
    assert RoomMembership.objects.get(room=team["general"], user=team["bob"]).role == "owner"


def test_direct_rooms_are_found_again_and_stay_private(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    url = f"/api/w/{team['workspace'].slug}/direct"
    first = _json(client, "POST", url, {"user_ids": [team["bob"].pk]}).json()["room"]
    client.force_login(team["bob"])
    again = _json(client, "POST", url, {"user_ids": [team["ada"].pk]}).json()["room"]
    assert first["id"] == again["id"]
    client.force_login(team["cy"])
    assert_error(_json(client, "GET", f"/api/rooms/{first['id']}"), status=404, code="not_found")
    stranger = make_user()
    assert_error(_json(client, "POST", url, {"user_ids": [stranger.pk]}), status=404, code="not_found")


def test_every_room_view_answers_not_found_to_outsiders(client: Client, team: dict[str, Any]) -> None:
    secret = team["secret"].pk
    invite = Invite.objects.create(
        room=team["secret"], token="t" * 32, created_by=team["ada"], expires_at=timezone.now() + timedelta(days=1)
    )
    calls = [
        ("GET", f"/api/rooms/{secret}", None),
        ("PATCH", f"/api/rooms/{secret}", {"topic": "x"}),
        ("POST", f"/api/rooms/{secret}/join", None),
        ("POST", f"/api/rooms/{secret}/leave", None),
        ("POST", f"/api/rooms/{secret}/members/{team['bob'].pk}/role", {"role": "moderator"}),
        ("GET", f"/api/rooms/{secret}/invites", None),
        ("POST", f"/api/rooms/{secret}/invites", {}),
        ("POST", f"/api/invites/{invite.pk}/revoke", None),
        ("GET", "/api/rooms/999999", None),
    ]
    outsider_in_workspace, stranger = team["cy"], make_user()
    for user in (outsider_in_workspace, stranger):
        client.force_login(user)
        for method, url, body in calls:
            assert_error(_json(client, method, url, body), status=404, code="not_found")
        for url in [f"/api/w/{team['workspace'].slug}/rooms", f"/w/{team['workspace'].slug}/"]:
            if user is stranger:
                assert client.get(url, HTTP_ACCEPT="application/json").status_code == 404
    client.logout()
    assert_error(_json(client, "GET", f"/api/rooms/{secret}"), status=401, code="unauthenticated")
    assert Room.objects.get(pk=secret).topic == ""


def test_invite_link_for_a_signed_in_user(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    invite = _json(
        client, "POST", f"/api/rooms/{team['secret'].pk}/invites", {"expires_in_days": 3, "max_uses": 1}
    ).json()["invite"]
    path = re.sub(r"^https?://[^/]+", "", invite["url"])
    client.force_login(team["cy"])
    page = client.get(path)
    assert page.status_code == 200
    assert b"secret" in page.content
    joined = client.post(path)
    assert joined.status_code == 302
    assert joined["Location"] == f"/w/{team['workspace'].slug}/#room-{team['secret'].pk}"
    assert RoomMembership.objects.filter(room=team["secret"], user=team["cy"]).exists()
    assert client.post(path).status_code == 302  # accepting again is harmless
    client.force_login(make_user())
    used_up = client.get(path)
    assert_error(used_up, status=404, code="invite_used_up")


def test_expired_and_revoked_invites_say_so(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    invite = _json(client, "POST", f"/api/rooms/{team['general'].pk}/invites", {}).json()["invite"]
    path = re.sub(r"^https?://[^/]+", "", invite["url"])
    Invite.objects.filter(pk=invite["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(team["cy"])
    assert_error(client.get(path), status=404, code="invite_expired")
    Invite.objects.filter(pk=invite["id"]).update(expires_at=timezone.now() + timedelta(days=1))
    client.force_login(team["ada"])
    assert _json(client, "POST", f"/api/invites/{invite['id']}/revoke").status_code == 200
    client.force_login(team["cy"])
    assert_error(client.get(path), status=404, code="invite_invalid")
    assert_error(client.get("/invite/not-a-real-token/"), status=404, code="invite_invalid")
    client.force_login(team["ada"])
    assert_error(
        _json(client, "POST", f"/api/rooms/{team['general'].pk}/invites", {"expires_in_days": 400}),
        status=400,
        code="invalid",
    )


def test_invite_by_email_brings_a_new_user_through_signup_into_the_room(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    response = _json(client, "POST", f"/api/rooms/{team['secret'].pk}/invites", {"email": "Newbie@Example.com"})
    assert response.status_code == 201
    assert response.json()["invite"]["max_uses"] == 1
    invitation = mail.outbox[-1]
    assert invitation.to == ["newbie@example.com"]
    path = re.search(r"https?://[^/\s]+(/invite/[^\s]+/)", invitation.body).group(1)

    newcomer = Client()
    landing = newcomer.get(path)
    assert b"Create an account to join" in landing.content
    password = "correct-horse-battery-9"
    newcomer.post(
        "/accounts/signup/",
        {"display_name": "Newbie", "email": "newbie@example.com", "password1": password, "password2": password},
    )
    confirm = re.search(r"https?://[^\s]+(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body).group(1)
    newcomer.post(confirm)
    # Onboarding asks for the profile and goals only, then ends in the invited room.
    home = newcomer.get("/", follow=True)
    assert home.redirect_chain[-1][0] == "/welcome/profile/"
    assert b"You're joining" in home.content
    newcomer.post("/welcome/profile/", {"display_name": "Newbie", "title": "", "timezone": "UTC"})
    joined = newcomer.post("/welcome/goals/", {"skip": "skip"})
    assert joined["Location"].endswith(f"#room-{team['secret'].pk}")
    user = User.objects.get(email="newbie@example.com")
    assert RoomMembership.objects.filter(room=team["secret"], user=user).exists()


def test_email_invite_is_for_that_address_only(client: Client, team: dict[str, Any]) -> None:
    client.force_login(team["ada"])
    invite = _json(client, "POST", f"/api/rooms/{team['secret'].pk}/invites", {"email": "someone@example.com"}).json()[
        "invite"
    ]
    path = re.sub(r"^https?://[^/]+", "", invite["url"])
    client.force_login(team["cy"])
    assert_error(client.post(path), status=403, code="invite_other_email")
    assert_error(
        _json(client, "POST", f"/api/rooms/{team['secret'].pk}/invites", {"email": "nope"}),
        status=404,
        code="not_found",
    )


def test_a_dead_mail_server_keeps_the_invite_and_says_so(client: Client, team: dict[str, Any], settings: Any) -> None:
    from mathia.embedded.redis import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    client.force_login(team["ada"])
    response = _json(client, "POST", f"/api/rooms/{team['secret'].pk}/invites", {"email": "late@example.com"})
    assert response.status_code == 201
    body = response.json()
    assert "could not be sent" in body["email_error"]
    assert "late@example.com" in body["email_error"]
    assert Invite.objects.filter(pk=body["invite"]["id"], revoked_at__isnull=True).exists()
