"""Reminders in real Chromium: set one from the bell, Cancel on its toast, it goes off, Snooze."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import pytest

from mathia.accounts.models import User
from mathia.core.clock import FrozenClock
from mathia.reminders.dispatcher import dispatch_due
from mathia.reminders.models import Reminder, Status
from tests.browser import chromium
from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.reminder_helpers import forget_reminder_places  # noqa: F401  (autouse)
from tests.test_chat_browser import SCREENSHOTS, _signed_in_page
from tests.ws import session_cookie_sync

T = TypeVar("T")

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.server]


def _db(func: Callable[[], T]) -> T:
    """Run ORM code off Playwright's event loop thread (Django refuses it there)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(func).result()


def test_a_reminder_set_from_the_bell_goes_off_in_the_room_for_its_owner_only() -> None:
    workspace, (ada, bob) = make_team(2)
    User.objects.filter(pk=ada.pk).update(timezone="Europe/London")
    general = make_room(ada, workspace, "general", members=[bob])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cookies = [session_cookie_sync(ada), session_cookie_sync(bob)]
    with running_server() as base, chromium() as browser:
        ada_page = _signed_in_page(browser, base, cookies[0])
        bob_page = _signed_in_page(browser, base, cookies[1])
        for page in (ada_page, bob_page):
            page.goto(f"{base}/w/{workspace.slug}/#room-{general.pk}")
            page.wait_for_selector(".room-start")

        # An unclear time gets a question with a button for the exact time.
        ada_page.click("#reminder-bell")
        ada_page.fill("#reminder-request", "stretch tomorrow")
        ada_page.press("#reminder-request", "Enter")
        ada_page.wait_for_selector(".reminder-answer:has-text('At what time tomorrow?')")
        assert ada_page.is_visible(".reminder-answer button:has-text('tomorrow at 09:00')")
        assert not _db(Reminder.objects.exists)

        # A clear one is confirmed with its exact local time, and a toast offers Cancel.
        ada_page.fill("#reminder-request", "stretch in 10 minutes")
        ada_page.press("#reminder-request", "Enter")
        ada_page.wait_for_selector('.reminder-answer:has-text("I\'ll remind you to stretch on")')
        assert "(Europe/London)" in ada_page.inner_text(".reminder-answer")
        ada_page.wait_for_selector(".toast:has-text('Reminder set: stretch') button:has-text('Cancel')")
        ada_page.wait_for_selector(".reminder-panel li:has-text('stretch')")
        reminder = _db(Reminder.objects.get)

        # A second one, cancelled from its toast.
        ada_page.fill("#reminder-request", "drink water in 1 hour")
        ada_page.press("#reminder-request", "Enter")
        ada_page.click(".toast:has-text('drink water') button:has-text('Cancel')")
        ada_page.wait_for_function("!document.querySelector('.reminder-lists').innerText.includes('drink water')")
        assert _db(lambda: Reminder.objects.get(text="drink water").status) == Status.CANCELLED
        ada_page.click("#reminder-bell")  # close the panel

        # It goes off: a toast, the bell, and Mathia's message in #general that only Ada sees.
        assert _db(lambda: dispatch_due(clock=FrozenClock(reminder.due_at + timedelta(seconds=1)))).delivered == 1
        ada_page.wait_for_selector(".toast.due:has-text('stretch')")
        ada_page.wait_for_selector("#reminder-count:has-text('1')")
        ada_page.wait_for_selector(".message.only-you:has-text('Reminder: stretch') .only-you-note")
        ada_page.screenshot(path=str(SCREENSHOTS / "reminder-due.png"))
        bob_page.wait_for_timeout(500)
        assert "stretch" not in bob_page.inner_text("#messages")

        # Snooze from the message; then the bell's "Mark all as seen" clears the count.
        ada_page.click(".message.only-you .reminder-card button[data-snooze='10m']")
        ada_page.wait_for_selector(".toast:has-text('Snoozed until')")
        _db(reminder.refresh_from_db)
        assert reminder.status == Status.SCHEDULED
        ada_page.click("#reminder-bell")
        ada_page.click(".reminder-panel button:has-text('Mark all as seen')")
        ada_page.wait_for_selector("#reminder-count", state="hidden")
        ada_page.wait_for_selector(".toast.due", state="detached")
        ada_page.click("#reminder-bell")

        # Asked in the room: Mathia confirms with the exact time, and Ada (only) gets Cancel on it.
        ada_page.fill("#composer-input", "@mathia remind me to book the venue tomorrow at 10am")
        ada_page.press("#composer-input", "Enter")
        confirmation = '.message.assistant:has-text("I\'ll remind you to book the venue on")'
        ada_page.wait_for_selector(f"{confirmation} button[data-cancel-reminder]")
        bob_page.wait_for_selector(confirmation)
        assert bob_page.query_selector(f"{confirmation} button[data-cancel-reminder]") is None
        ada_page.click(f"{confirmation} button[data-cancel-reminder]")
        ada_page.wait_for_selector(f"{confirmation} .reminder-card:has-text('No longer coming up')")
        assert _db(lambda: Reminder.objects.get(text="book the venue").status) == Status.CANCELLED

        # The room's details panel lists what is coming up, with Cancel.
        ada_page.click("#toggle-context")
        ada_page.wait_for_selector(".reminders-context h3:has-text('Your reminders (1)')")
        ada_page.click(".reminders-context li:has-text('stretch') button:has-text('Cancel')")
        ada_page.wait_for_selector(".reminders-context h3:has-text('Your reminders (0)')")
        assert _db(lambda: Reminder.objects.get(pk=reminder.pk).status) == Status.CANCELLED
