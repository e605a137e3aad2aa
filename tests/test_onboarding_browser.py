"""The onboarding wizard in real Chromium: sign-up to the first room, a bad input, an avatar
too large (caught before upload), leaving mid-way and coming back, copying the invite link."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from PIL import Image

from mathia.accounts.models import User
from mathia.goals.models import GoalProfile
from mathia.rooms.models import Room
from tests.browser import chromium
from tests.processes import running_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".data" / "screenshots"
PASSWORD = "correct-horse-battery-9"


def _png(size: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (40, 90, 200)).save(out, format="PNG")
    return out.getvalue()


def _off_the_loop(work: Callable[[], object]) -> object:
    """Database work from inside Playwright's sync API, which runs an event loop in this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def test_sign_up_through_the_wizard_to_the_first_room(tmp_path: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    env = {"DATA_DIR": str(tmp_path), "AVATAR_MAX_BYTES": "4096"}
    with running_server(env=env) as base, chromium() as browser:
        context = browser.new_context(timezone_id="Asia/Tokyo", viewport={"width": 1000, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        page.set_default_timeout(10_000)

        page.goto(f"{base}/accounts/signup/")
        page.fill("input[name=display_name]", "Grace Hopper")
        page.fill("input[name=email]", "grace@example.com")
        page.fill("input[name=password1]", PASSWORD)
        page.fill("input[name=password2]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url("**/accounts/confirm-email/")
        # The verification mail went to the server's own outbox; confirm the address as the link would.
        _off_the_loop(lambda: EmailAddress.objects.filter(email="grace@example.com").update(verified=True))
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", "grace@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")

        # 1. Profile: the browser's timezone is chosen; a bad input is shown beside its field.
        page.wait_for_url("**/welcome/profile/")
        assert page.inner_text(".wizard > p.muted") == "Step 1 of 4"
        assert page.locator(".progress li.current").inner_text() == "Profile"
        assert page.input_value("#id_timezone") == "Asia/Tokyo"
        page.fill("#id_display_name", "")
        page.click("#next")
        page.wait_for_selector("#errors-display_name")
        assert "required" in page.inner_text("#errors-display_name").lower()
        page.fill("#id_display_name", "Grace Hopper")
        page.fill("#id_title", "Rear admiral")
        page.set_input_files(
            "#id_avatar", {"name": "big.png", "mimeType": "image/png", "buffer": b"\x89PNG" + b"0" * 9000}
        )
        page.wait_for_selector("#errors-avatar:not([hidden])")
        assert "too large: at most 4.0\u00a0KB" in page.inner_text("#errors-avatar")
        assert page.evaluate("document.getElementById('id_avatar').files.length") == 0  # not uploaded
        page.screenshot(path=str(SCREENSHOTS / "onboarding-profile-errors.png"), full_page=True)
        page.set_input_files("#id_avatar", {"name": "me.png", "mimeType": "image/png", "buffer": _png(48)})
        assert page.locator("#errors-avatar").is_hidden()
        page.click("#next")

        # 2. Goals.
        page.wait_for_url("**/welcome/goals/")
        page.check("input[value='Automate repetitive work']")
        page.fill("#id_other_goals", "Teach compilers to everyone")
        page.select_option("#id_experience_level", "executive")
        page.screenshot(path=str(SCREENSHOTS / "onboarding-goals.png"), full_page=True)
        page.click("#next")
        page.wait_for_url("**/welcome/workspace/")

        # Leaving and coming back resumes at the workspace step.
        page.close()
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{base}/")
        page.wait_for_url("**/welcome/workspace/")
        assert page.locator(".progress li.done").count() == 2

        # 3. Workspace: the address follows the name as it is typed.
        page.fill("#id_name", "Navy Labs")
        assert page.inner_text("#slug-preview") == "navy-labs"
        page.click("#next")

        # 4. Teammates: a link to share, copied to the clipboard.
        page.wait_for_url("**/welcome/teammates/")
        page.click("#make-link")
        page.wait_for_selector("#share-link")
        link = page.input_value("#share-link")
        assert "/invite/" in link
        page.click("#copy-link")
        page.wait_for_selector("#copy-link:has-text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == link
        page.screenshot(path=str(SCREENSHOTS / "onboarding-teammates.png"))
        page.click("#next")

        # The first room.
        page.wait_for_selector("#room-title:has-text('general')")
        assert "/w/navy-labs/" in page.url
        page.screenshot(path=str(SCREENSHOTS / "onboarding-first-room.png"))

        # Everything is there to see and change in Settings: what Mathia knows, and the wallet.
        page.click("header a:has-text('Settings')")
        page.click(".settings-nav a:has-text('Goals')")
        page.wait_for_selector("#prompt-text")
        assert "Teach compilers to everyone" in page.inner_text("#prompt-text")
        assert "Rear admiral" in page.inner_text("#prompt-text")
        page.screenshot(path=str(SCREENSHOTS / "settings-goals.png"), full_page=True)
        page.uncheck("#personalize")
        page.click("#save-personalize")
        page.wait_for_selector("#prompt-text-off")
        page.click(".settings-nav a:has-text('Wallet')")
        page.wait_for_selector("#balance")
        assert page.inner_text("#balance") == "500 credits"
        assert page.locator("#ledger tbody tr").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "settings-wallet.png"), full_page=True)

    user = User.objects.get(email="grace@example.com")
    assert user.onboarded_at is not None
    assert (user.title, user.timezone) == ("Rear admiral", "Asia/Tokyo")
    assert user.avatar
    goals = GoalProfile.objects.get(user=user)
    assert goals.goals == ["Automate repetitive work", "Teach compilers to everyone"]
    assert not goals.personalize
    assert Room.objects.filter(workspace__slug="navy-labs", name="general").exists()
