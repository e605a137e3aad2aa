"""Sign-up, email verification, sign-in, throttling and password reset, as a person does them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from mathia.accounts.models import User
from mathia.workspaces.models import Membership, Role
from tests.helpers import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def _link_in_last_email(pattern: str) -> str:
    body = mail.outbox[-1].body
    match = re.search(rf"https?://[^\s]+{pattern}[^\s]*", body)
    assert match, body
    return match.group(0).split("testserver", 1)[-1]


def _sign_up(client: Client, email: str = "Ada@Example.com", **extra: str) -> None:
    data = {
        "display_name": "Ada Lovelace",
        "email": email,
        "password1": PASSWORD,
        "password2": PASSWORD,
        "timezone": "Africa/Nairobi",
    }
    data.update(extra)
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 302, response.content.decode()[:2000]


def test_signup_page_renders_with_display_name_and_browser_timezone_field(client: Client) -> None:
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="display_name"' in html
    assert "data-browser-timezone" in html


def test_registration_then_verification_then_login(client: Client) -> None:
    _sign_up(client)
    user = User.objects.get(is_assistant=False)
    assert user.email == "ada@example.com"  # stored lowercased
    assert user.display_name == "Ada Lovelace"
    assert user.timezone == "Africa/Nairobi"
    default = Membership.objects.get(user=user, is_default=True)
    assert default.role == Role.OWNER

    # Before verifying, signing in does not let them in.
    client.logout()
    response = client.post("/accounts/login/", {"login": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert client.get("/").status_code == 302  # still anonymous

    confirm_url = _link_in_last_email("/accounts/confirm-email/")
    response = client.post(confirm_url)
    assert response.status_code == 302

    client.logout()
    response = client.post("/accounts/login/", {"login": "ADA@example.com", "password": PASSWORD})
    assert response.status_code == 302
    home = client.get("/", follow=True)
    assert home.status_code == 200
    # A new person goes through onboarding first (tests/test_onboarding.py), their name filled in.
    assert home.redirect_chain[-1][0] == "/welcome/profile/"
    assert b'value="Ada Lovelace"' in home.content
    assert client.get(f"/w/{default.workspace.slug}/")["Location"] == "/welcome/"


def test_signup_rejects_weak_passwords(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {"display_name": "X", "email": "weak@example.com", "password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert "password1" in response.context["form"].errors
    assert not User.objects.filter(is_assistant=False).exists()


def test_signup_with_a_taken_email_reveals_nothing_and_warns_the_owner(client: Client) -> None:
    make_user(email="taken@example.com")
    _sign_up(client, email="TAKEN@example.com")
    assert User.objects.filter(is_assistant=False).count() == 1
    assert mail.outbox[-1].to == ["taken@example.com"]
    assert "already" in mail.outbox[-1].body.lower()


def test_signup_with_unknown_timezone_falls_back_to_utc(client: Client) -> None:
    _sign_up(client, email="tz@example.com", timezone="Mars/Olympus_Mons")
    assert User.objects.get(email="tz@example.com").timezone == "UTC"


def test_failed_logins_are_throttled(client: Client) -> None:
    make_user(email="victim@example.com")
    pages = [
        client.post("/accounts/login/", {"login": "victim@example.com", "password": "wrong-guess"}).content.decode()
        for _ in range(6)
    ]
    throttled = "Too many failed login attempts"
    assert all(throttled not in page for page in pages[:5])
    assert throttled in pages[5]
    # Even the right password is refused while throttled.
    response = client.post("/accounts/login/", {"login": "victim@example.com", "password": "a-long-passphrase-42"})
    assert throttled in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset(client: Client) -> None:
    make_user(email="forgetful@example.com")
    response = client.post("/accounts/password/reset/", {"email": "forgetful@example.com"})
    assert response.status_code == 302
    reset_url = _link_in_last_email("/accounts/password/reset/key/")
    form_page = client.get(reset_url, follow=True)
    assert form_page.status_code == 200
    new_password = "a-brand-new-passphrase-7"
    response = client.post(form_page.redirect_chain[-1][0], {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    assert client.login(username="forgetful@example.com", password=new_password)


def test_logout(client: Client) -> None:
    user = make_user()
    client.force_login(user)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_createsuperuser_path_also_gets_a_default_workspace() -> None:
    admin = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    assert Membership.objects.filter(user=admin, is_default=True, role=Role.OWNER).exists()
    assert admin.is_staff
    assert admin.is_superuser


def test_admin_lists_users_and_workspaces(client: Client) -> None:
    admin = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    client.force_login(admin)
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get("/admin/workspaces/workspace/").status_code == 200
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "new@example.com",
            "display_name": "New",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Membership.objects.filter(user__email="new@example.com", is_default=True).exists()


def test_a_dead_mail_server_does_not_break_sign_up_or_password_reset(client: Client, settings: Any) -> None:
    from mathia.embedded.redis import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    _sign_up(client)  # a 302, not a 500
    assert User.objects.filter(email="ada@example.com").exists()
    page = client.get("/accounts/confirm-email/")
    assert "could not send you the email" in page.content.decode()
    client.logout()
    response = client.post("/accounts/password/reset/", {"email": "ada@example.com"}, follow=True)
    assert response.status_code == 200
    assert "could not send you the email" in response.content.decode()
