"""No message, room name or topic can run script in another member's browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from mathia.chat.actions import message_send
from mathia.chat.rendering import Mentionable, render_markdown
from mathia.rooms import actions as room_actions
from tests.browser import chromium
from tests.chat_helpers import make_room, make_team
from tests.processes import running_server
from tests.ws import session_cookie_sync

PAYLOADS = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=1>",
    "<svg/onload=window.__xss=1>",
    '"><script>window.__xss=1</script>',
    "<iframe src=javascript:window.__xss=1>",
    "[click](javascript:window.__xss=1)",
    "[click](JaVaScRiPt:window.__xss=1)",
    "[click](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    "![x](x onerror=window.__xss=1)",
    '<a href="javascript:window.__xss=1">x</a>',
    "<details open ontoggle=window.__xss=1>",
    "`<script>window.__xss=1</script>`",
    "```\n<script>window.__xss=1</script>\n```",
    '<math><mi xlink:href="javascript:window.__xss=1">x</mi></math>',
    "<style>*{background:url(javascript:window.__xss=1)}</style>",
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "@Ada<script>window.__xss=1</script>",
    "<<script>script>window.__xss=1<</script>/script>",
]
SAFE_TAGS = {"p", "br", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote", "span", "del", "s"}


class _Elements(HTMLParser):
    """Collects the elements and attributes a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_rendered_messages_contain_nothing_executable(payload: str) -> None:
    html = render_markdown(payload, members=[Mentionable(1, "Ada")]).html
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in SAFE_TAGS, html
        for name, value in attrs:
            assert not name.startswith("on"), html
            if name == "href":
                assert re.match(r"^(https?:|mailto:)", value or ""), html


@pytest.mark.django_db(transaction=True)
@pytest.mark.browser
@pytest.mark.server
def test_payloads_in_messages_room_names_and_topics_do_not_run_in_chromium() -> None:
    workspace, (ada, bob) = make_team(2, workspace_name="<img src=x onerror=window.__xss=1>")
    room = make_room(ada, workspace, "<svg/onload=window.__xss=1>", members=[bob])
    room_actions.room_update(user=ada, room_id=room.pk, topic="<img src=x onerror=window.__xss=1>")
    for i, payload in enumerate(PAYLOADS):
        message_send(user=ada, room_id=room.pk, body=payload, client_id=f"xss-{i}")
    bob.display_name = "<script>window.__xss=1</script>"
    bob.save()
    message_send(user=bob, room_id=room.pk, body="hi from a nasty name", client_id="xss-name")
    cookie = session_cookie_sync(ada)
    invite = room_actions.invite_create(user=ada, room_id=room.pk)
    with running_server() as base, chromium() as browser:
        context = browser.new_context()
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/w/{workspace.slug}/#room-{room.pk}")
        page.wait_for_selector(".message .body:has-text('hi from a nasty name')")
        page.click("#toggle-context")
        page.wait_for_selector("#context-body .members li")
        page.goto(f"{base}/invite/{invite.token}/")
        page.goto(f"{base}/w/{workspace.slug}/members/")
        assert page.evaluate("window.__xss") is None
        assert dialogs == []
