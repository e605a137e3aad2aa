"""The onboarding wizard in the test client: a fresh sign-up through to the first room,
resuming where one left off, bad inputs with errors beside their fields, and an invited
person skipping workspace creation to land in the room they were invited to."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from mathia.accounts.models import User
from mathia.goals.models import GoalProfile
from mathia.rooms.models import Invite, Room, RoomMembership
from mathia.workspaces.models import Membership
from tests.chat_helpers import make_chat_team
from tests.helpers import assert_error, make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def png(size: tuple[int, int] = (300, 200), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, format=fmt)
    return out.getvalue()


def sign_up(client: Client, email: str = "ada@example.com", name: str = "Ada Lovelace") -> User:
    """Sign up, verify the email and sign in, as a person does."""
    client.post(
        "/accounts/signup/",
        {
            "display_name": name,
            "email": email,
            "password1": PASSWORD,
            "password2": PASSWORD,
            "timezone": "Europe/London",
        },
    )
    confirm = re.search(r"https?://[^\s]+(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body)
    assert confirm, mail.outbox[-1].body
    client.post(confirm.group(1))
    client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    return User.objects.get(email=email)


def profile_data(**extra: Any) -> dict[str, Any]:
    return {"display_name": "Ada Lovelace", "title": "Engineer", "timezone": "Europe/London", **extra}


def test_a_fresh_sign_up_goes_through_every_step_to_the_first_room(client: Client, media: Path) -> None:
    user = sign_up(client)
    home = client.get("/", follow=True)
    assert home.redirect_chain[-1][0] == "/welcome/profile/"
    page = home.content.decode()
    assert "Step 1 of 4" in page
    assert 'value="Ada Lovelace"' in page
    assert '<option value="Europe/London" selected>' in page  # the browser's timezone, from sign-up

    # 1. Profile, with an avatar.
    avatar = SimpleUploadedFile("me.jpg", png(fmt="JPEG"), content_type="image/jpeg")
    response = client.post("/welcome/profile/", profile_data(title="Principal engineer", avatar=avatar))
    assert response["Location"] == "/welcome/goals/"
    user.refresh_from_db()
    assert (user.title, user.onboarding_step) == ("Principal engineer", "goals")
    with Image.open(user.avatar.path) as stored:
        assert (stored.format, stored.size) == ("PNG", (256, 256))  # re-encoded, square
    served = client.get(f"/avatars/{user.pk}/")
    assert served["Content-Type"] == "image/png"
    assert "Step 2 of 4" in client.get("/welcome/goals/").content.decode()

    # 2. Goals: chosen and written.
    response = client.post(
        "/welcome/goals/",
        {
            "goals": ["Grow into a leadership role", "Automate repetitive work"],
            "other_goals": "Launch the mobile app\n\n",
            "industry": "Fintech",
            "skills": "Python, SQL ,  hiring",
            "experience_level": "senior",
            "help_with": "Planning and reviews",
        },
    )
    assert response["Location"] == "/welcome/workspace/"
    goals = GoalProfile.objects.get(user=user)
    assert goals.goals == ["Grow into a leadership role", "Automate repetitive work", "Launch the mobile app"]
    assert goals.skills == ["Python", "SQL", "hiring"]

    # 3. Workspace: a name and its address.
    response = client.post("/welcome/workspace/", {"action": "create", "name": "Acme Robotics", "slug": ""})
    assert response["Location"] == "/welcome/teammates/"
    workspace = Membership.objects.get(user=user, is_default=True).workspace
    assert (workspace.name, workspace.slug) == ("Acme Robotics", "acme-robotics")
    general = Room.objects.get(workspace=workspace, name="general")

    # 4. Teammates: by email, and a link to copy.
    response = client.post("/welcome/teammates/", {"action": "email", "emails": "bob@example.com, Cy@Example.com"})
    assert response.status_code == 200
    assert {tuple(m.to) for m in mail.outbox[-2:]} == {("bob@example.com",), ("cy@example.com",)}
    assert "bob@example.com: invitation sent" in response.content.decode()
    response = client.post("/welcome/teammates/", {"action": "link"})
    link = re.search(r'id="share-link" readonly value="([^"]+)"', response.content.decode())
    assert link
    assert Invite.objects.filter(room=general, email="", max_uses=50).exists()
    response = client.post("/welcome/teammates/", {"action": "finish"})
    assert response["Location"] == f"/w/acme-robotics/#room-{general.pk}"
    user.refresh_from_db()
    assert user.onboarded_at is not None
    # The app is open now, and the wizard is behind them.
    assert client.get("/", follow=True).redirect_chain[-1][0] == "/w/acme-robotics/"
    assert client.get("/welcome/")["Location"] == "/"
    assert client.get(f"/api/w/{workspace.slug}/rooms").status_code == 200


def test_leaving_mid_way_resumes_at_the_same_step_and_back_keeps_what_was_entered(client: Client) -> None:
    user = sign_up(client)
    client.post("/welcome/profile/", profile_data(title="Analyst"))
    client.post("/welcome/goals/", {"skip": "skip"})  # optional: skipped
    assert not GoalProfile.objects.filter(user=user).exists()

    # They close the tab and sign in again another day.
    again = Client()
    again.post("/accounts/login/", {"login": "ada@example.com", "password": PASSWORD})
    landing = again.get("/", follow=True)
    assert landing.redirect_chain[-1][0] == "/welcome/workspace/"
    assert "Step 3 of 4" in landing.content.decode()
    # Steps not reached yet cannot be jumped to; the app stays closed.
    assert again.get("/welcome/teammates/")["Location"] == "/welcome/workspace/"
    assert again.get(f"/w/{Membership.objects.get(user=user).workspace.slug}/")["Location"] == "/welcome/"
    assert_error(again.get("/api/w/whatever/rooms"), status=403, code="onboarding_required")
    # Back to the profile: what they entered is there, and saving it returns them forward.
    back = again.get("/welcome/profile/").content.decode()
    assert 'value="Analyst"' in back
    assert 'href="/welcome/profile/"' not in back  # no Back on the first step
    goals = again.get("/welcome/goals/").content.decode()
    assert 'id="back" href="/welcome/profile/"' in goals
    assert again.post("/welcome/profile/", profile_data(title="Lead analyst"))["Location"] == "/welcome/goals/"
    user.refresh_from_db()
    assert user.onboarding_step == "workspace"  # going back does not lose their place
    assert again.get("/welcome/")["Location"] == "/welcome/workspace/"


def test_required_steps_cannot_be_skipped(client: Client) -> None:
    user = sign_up(client)
    response = client.post("/welcome/profile/", {"skip": "skip", "display_name": "", "timezone": "UTC"})
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.onboarding_step == "profile"
    client.post("/welcome/profile/", profile_data())
    client.post("/welcome/goals/", {"skip": "skip"})
    response = client.post("/welcome/workspace/", {"skip": "skip"})
    assert response.status_code == 400
    assert "errors-name" in response.content.decode()
    assert "Skip" not in client.get("/welcome/workspace/").content.decode()


def test_bad_profile_input_is_shown_beside_each_field(client: Client, settings: Any) -> None:
    sign_up(client)
    response = client.post("/welcome/profile/", {"display_name": "   ", "title": "x" * 81, "timezone": "Mars/Base"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"display_name", "title", "timezone"}
    html = response.content.decode()
    for field in ("display_name", "title", "timezone"):
        assert f'id="errors-{field}"' in html

    def upload(data: bytes, name: str = "a.png") -> Any:
        return client.post("/welcome/profile/", profile_data(avatar=SimpleUploadedFile(name, data)))

    not_image = upload(b"#!/bin/sh\necho not a picture\n", "evil.png")
    assert not_image.status_code == 400
    assert "not an image we can read" in not_image.content.decode()
    truncated = upload(png()[:60])
    assert truncated.status_code == 400
    assert "damaged or incomplete" in truncated.content.decode()
    bmp = io.BytesIO()
    Image.new("RGB", (10, 10)).save(bmp, format="BMP")
    assert "Use a PNG, JPEG, GIF or WebP" in upload(bmp.getvalue(), "a.bmp").content.decode()
    settings.AVATAR_MAX_BYTES = 2048
    big = upload(png((400, 400)) + b"\0" * 4096)
    assert big.status_code == 400
    assert "too large" in big.content.decode()
    assert 'id="errors-avatar"' in big.content.decode()
    user = User.objects.get(email="ada@example.com")
    assert user.onboarding_step == "profile"
    assert not user.avatar


def test_bad_goals_and_workspace_input_get_errors_per_field(client: Client) -> None:
    taken = make_user(display_name="Other")
    from mathia.workspaces.actions import workspace_create

    workspace_create(owner=taken, name="Acme")  # the address "acme" is taken
    sign_up(client)
    client.post("/welcome/profile/", profile_data())
    response = client.post(
        "/welcome/goals/",
        {"other_goals": "\n".join(f"goal {n}" for n in range(11)), "skills": "x" * 41, "experience_level": "guru"},
    )
    assert response.status_code == 400
    assert "experience_level" in response.context["form"].errors
    response = client.post("/welcome/goals/", {"other_goals": "\n".join(f"goal {n}" for n in range(11))})
    assert "errors-other_goals" in response.content.decode()
    assert "at most 10 goals" in response.content.decode()
    client.post("/welcome/goals/", {"skip": "skip"})

    taken_slug = client.post("/welcome/workspace/", {"action": "create", "name": "Acme", "slug": ""})
    assert taken_slug.status_code == 400
    assert "That address is taken" in taken_slug.content.decode()
    assert "errors-slug" in taken_slug.content.decode()
    bad_slug = client.post("/welcome/workspace/", {"action": "create", "name": "Acme", "slug": "No Spaces!"})
    assert "errors-slug" in bad_slug.content.decode()
    empty = client.post("/welcome/workspace/", {"action": "create", "name": " ", "slug": ""})
    assert "errors-name" in empty.content.decode()
    ok = client.post("/welcome/workspace/", {"action": "create", "name": "Acme", "slug": "acme-two"})
    assert ok["Location"] == "/welcome/teammates/"
    bad_emails = client.post("/welcome/teammates/", {"action": "email", "emails": "bob@example.com, not-an-email"})
    assert bad_emails.status_code == 400
    assert "Not an email address: not-an-email" in bad_emails.content.decode()
    assert not Invite.objects.filter(email="bob@example.com").exists()  # nothing sent when one is wrong


def test_an_invited_person_skips_workspace_creation_and_lands_in_the_room(client: Client) -> None:
    team = make_chat_team()
    from mathia.rooms.actions import invite_create

    invite = invite_create(user=team["ada"], room_id=team["secret"].pk)
    landing = client.get(f"/invite/{invite.token}/")
    assert b"Create an account to join" in landing.content
    user = sign_up(client, email="newbie@example.com", name="Newbie")
    page = client.get("/", follow=True)
    assert page.redirect_chain[-1][0] == "/welcome/profile/"
    html = page.content.decode()
    assert "Step 1 of 2" in html
    assert "joining <strong>#secret</strong>" in html
    client.post("/welcome/profile/", profile_data(display_name="Newbie"))
    response = client.post("/welcome/goals/", {"goals": ["Learn a new skill or technology"]})
    assert response["Location"] == f"/w/{team['workspace'].slug}/#room-{team['secret'].pk}"
    assert RoomMembership.objects.filter(room=team["secret"], user=user).exists()
    user.refresh_from_db()
    assert user.onboarded_at is not None
    assert Membership.objects.get(user=user, is_default=True).workspace == team["workspace"]
    assert client.get("/", follow=True).redirect_chain[-1][0] == f"/w/{team['workspace'].slug}/"


def test_a_person_mid_wizard_can_join_through_a_pasted_link_or_an_opened_one(client: Client) -> None:
    team = make_chat_team()
    from mathia.rooms.actions import invite_create

    sign_up(client, email="cy2@example.com", name="Cy Two")
    client.post("/welcome/profile/", profile_data(display_name="Cy Two"))
    client.post("/welcome/goals/", {"skip": "skip"})
    bad = client.post("/welcome/workspace/", {"action": "join", "invite_link": "https://mathia.example/invite/nope/"})
    assert bad.status_code == 400
    assert "errors-invite_link" in bad.content.decode()
    invite = invite_create(user=team["ada"], room_id=team["general"].pk)
    joined = client.post(
        "/welcome/workspace/", {"action": "join", "invite_link": f"https://mathia.example/invite/{invite.token}/"}
    )
    assert joined["Location"].endswith(f"#room-{team['general'].pk}")

    # Opening an invitation while still in the wizard: it is kept, and the wizard ends there.
    other = Client()
    user = sign_up(other, email="di2@example.com", name="Di Two")
    other.post("/welcome/profile/", profile_data(display_name="Di Two"))
    other.post("/welcome/goals/", {"skip": "skip"})  # now at the workspace step
    invite = invite_create(user=team["ada"], room_id=team["secret"].pk)
    assert other.get(f"/invite/{invite.token}/")["Location"] == "/welcome/"
    assert other.get("/welcome/")["Location"] == "/welcome/goals/"  # the last step before the room
    done = other.post("/welcome/goals/", {"skip": "skip"})
    assert done["Location"].endswith(f"#room-{team['secret'].pk}")
    assert RoomMembership.objects.filter(room=team["secret"], user=user).exists()


def test_everything_is_editable_later_in_settings(
    client: Client, media: Path, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user(display_name="Ada")
    client.force_login(user)
    page = client.get("/settings/")
    assert page["Location"] == "/settings/profile/"
    response = client.post(
        "/settings/profile/",
        profile_data(display_name="Ada L.", title="CTO", avatar=SimpleUploadedFile("a.gif", png(fmt="GIF"))),
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.title, user.timezone) == ("Ada L.", "CTO", "Europe/London")
    first = user.avatar.name
    assert first
    with django_capture_on_commit_callbacks(execute=True):  # the old file goes once the change is committed
        client.post("/settings/profile/", profile_data(remove_avatar="on"))
    user.refresh_from_db()
    assert not user.avatar
    assert not (media / first).exists()
    bad = client.post("/settings/profile/", profile_data(display_name=""))
    assert bad.status_code == 400
    assert 'id="errors-display_name"' in bad.content.decode()


def test_avatars_are_seen_only_by_people_who_share_a_workspace(client: Client) -> None:
    team = make_chat_team()
    from mathia.accounts.actions import user_update_details

    user_update_details(
        user=team["bob"],
        display_name="Bob",
        title="",
        timezone="UTC",
        avatar=SimpleUploadedFile("b.png", png()),
    )
    client.force_login(team["ada"])
    assert client.get(f"/avatars/{team['bob'].pk}/").status_code == 200
    assert_error(client.get(f"/avatars/{team['ada'].pk}/"), status=404, code="not_found")  # she has none
    client.force_login(make_user(display_name="Stranger"))
    assert_error(client.get(f"/avatars/{team['bob'].pk}/"), status=404, code="not_found")


@pytest.mark.django_db(transaction=True)
async def test_the_chat_socket_stays_closed_until_onboarding_is_done() -> None:
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from mathia.asgi import application
    from tests.ws import session_cookie

    newcomer = await database_sync_to_async(make_user)(onboarded=False)
    cookie = await session_cookie(newcomer)
    communicator = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", f"sessionid={cookie}".encode())]
    )
    await communicator.connect()
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


def test_the_address_new_is_reserved_for_the_new_workspace_page(client: Client) -> None:
    from mathia.workspaces.actions import workspace_create

    owner = make_user(display_name="Owner")
    assert workspace_create(owner=owner, name="New").slug != "new"
    sign_up(client)
    client.post("/welcome/profile/", profile_data())
    client.post("/welcome/goals/", {"skip": "skip"})
    response = client.post("/welcome/workspace/", {"action": "create", "name": "New", "slug": "new"})
    assert response.status_code == 400
    assert "errors-slug" in response.content.decode()
    response = client.post("/welcome/workspace/", {"action": "create", "name": "New", "slug": ""})
    assert response.status_code == 400  # made from the name: "new" too
