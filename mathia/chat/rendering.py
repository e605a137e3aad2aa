"""Markdown subset to safe HTML: markdown-it renders, nh3 sanitizes, mentions are linked.

Supported: emphasis, inline code, code blocks, links (and bare URLs), lists, block quotes.
Raw HTML in the source is shown as text. Whatever the renderer produces passes through nh3
with a short allow-list, so no message can run script in another member's browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

ALLOWED_TAGS = {"p", "br", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote", "span", "del", "s"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class", "data-user-id"}, "ol": {"start"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class Mentionable:
    user_id: int
    name: str


def _make_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "breaks": True, "typographer": False})
    md.enable(["linkify", "strikethrough"])
    md.disable(["heading", "lheading", "hr", "image", "table"], ignoreInvalid=True)
    md.add_render_rule("mention", _render_mention)
    md.core.ruler.push("mentions", _mention_rule)
    return md


def _render_mention(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    name = self.escapeHtml(token.content) if hasattr(self, "escapeHtml") else token.content
    return f'<span class="mention" data-user-id="{int(token.meta["user_id"])}">@{name}</span>'


def _mention_rule(state: StateCore) -> None:
    pattern: re.Pattern[str] | None = state.env.get("mention_pattern")
    if pattern is None:
        return
    by_name: dict[str, int] = state.env["mention_ids"]
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        link_depth = 0
        for child in block.children:
            link_depth += 1 if child.type == "link_open" else -1 if child.type == "link_close" else 0
            if child.type != "text" or link_depth > 0:
                children.append(child)
                continue
            children.extend(_split_mentions(child, pattern, by_name, state.env["mentioned"]))
        block.children = children


def _split_mentions(
    token: Token, pattern: re.Pattern[str], by_name: dict[str, int], found: list[int]
) -> Iterable[Token]:
    text = token.content
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            yield _text(text[position : match.start()])
        name = match.group(1)
        user_id = by_name[name.casefold()]
        mention = Token("mention", "", 0, content=name, meta={"user_id": user_id})
        found.append(user_id)
        yield mention
        position = match.end()
    if position < len(text):
        yield _text(text[position:])


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


_renderer = _make_renderer()


def _mention_pattern(members: Iterable[Mentionable]) -> tuple[re.Pattern[str] | None, dict[str, int]]:
    by_name = {member.name.casefold(): member.user_id for member in members if member.name}
    if not by_name:
        return None, by_name
    # Longest names first, so "@Ada Lovelace" wins over "@Ada".
    names = sorted(by_name, key=len, reverse=True)
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"(?<![\w@])@({alternatives})(?![\w])", re.IGNORECASE), by_name


@dataclass(frozen=True)
class Rendered:
    html: str
    mentioned_user_ids: list[int]


def render_markdown(text: str, *, members: Iterable[Mentionable] = ()) -> Rendered:
    """Render ``text`` to sanitized HTML and find the ``@Name`` mentions of ``members``."""
    pattern, by_name = _mention_pattern(members)
    env: dict[str, Any] = {"mention_pattern": pattern, "mention_ids": by_name, "mentioned": []}
    raw = _renderer.render(text, env)
    html = sanitize_html(raw)
    return Rendered(html=html.strip(), mentioned_user_ids=list(dict.fromkeys(env["mentioned"])))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")


def escape_markdown(text: str) -> str:
    """``text`` as literal characters inside Markdown (a display name in a generated message)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
