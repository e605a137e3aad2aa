"""``/gif <words>``: a GIF from GIPHY's search API, within the configured content rating.

``GET https://api.giphy.com/v1/gifs/search?api_key=<key>&q=<words>&limit=10&rating=<r>&lang=en``
answers ``{"data": [GIF objects], "pagination": {...}, "meta": {"status", "msg", "response_id"}}``.
GIPHY documents a "synthetic response" when its own systems have trouble: ``meta.status`` 200,
an empty ``meta.response_id`` and nothing else; that is treated as an error, not "no GIFs".

``GIPHY_RATING`` is the ceiling: a person may ask for a stricter rating, never a looser one.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mathia.tools.http import UpstreamFailure, get_json, not_configured
from mathia.tools.registry import IntentRule, Permission, SlashCommand, ToolContext, ToolResult, ToolSpec, register

URL = "https://api.giphy.com/v1/gifs/search"
LABEL = "GIPHY"
KEY_SETTING = "GIPHY_API_KEY"
RATINGS = ("g", "pg", "pg-13", "r")
Rating = Literal["g", "pg", "pg-13", "r"]


class GifInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=50, description="What the GIF should show, in a few words.")
    rating: Rating | None = Field(
        default=None, description="Content rating, at most the workspace's (g, pg, pg-13, r); default: the workspace's."
    )

    @field_validator("query")
    @classmethod
    def _clean(cls, value: str) -> str:
        value = re.sub(r"\s+", " ", value).strip()
        if not value:
            raise ValueError("say what the GIF should show")
        return value

    @model_validator(mode="after")
    def _within_ceiling(self) -> GifInput:
        # Resolved here, so the cache (keyed by the arguments) keeps ratings apart.
        self.rating = effective_rating(self.rating)  # type: ignore[assignment]
        return self


def effective_rating(asked: str | None) -> str:
    ceiling = settings.GIPHY_RATING
    if asked is None or RATINGS.index(asked) > RATINGS.index(ceiling):
        return str(ceiling)
    return asked


async def gif(ctx: ToolContext, args: GifInput) -> ToolResult:
    key = settings.GIPHY_API_KEY
    if not key:
        return not_configured("GIF search", KEY_SETTING)
    rating = effective_rating(args.rating)
    try:
        _, body = await get_json(
            URL,
            label=LABEL,
            key_setting=KEY_SETTING,
            params={"api_key": key, "q": args.query, "limit": 10, "offset": 0, "rating": rating, "lang": "en"},
        )
    except UpstreamFailure as failure:
        return failure.result
    try:
        meta = body.get("meta") or {}
        if not body.get("data") and not meta.get("response_id"):
            return ToolResult.error(f"{LABEL} is having trouble right now; try again later.", code="upstream")
        allowed = RATINGS[: RATINGS.index(rating) + 1]
        # The rating parameter is GIPHY's filter; checking each result again costs nothing.
        results = [g for g in body["data"] if str(g.get("rating", "")).lower() in allowed]
        if not results:
            return ToolResult.ok(f"No GIFs found for “{args.query}”.", data={"query": args.query, "gif": None})
        first = results[0]
        images = first["images"]
        image = images.get("downsized") or images.get("fixed_height") or images["original"]
        picked: dict[str, Any] = {
            "id": first.get("id"),
            "title": first.get("title") or args.query,
            "url": image["url"],
            "page": first.get("url"),
            "width": _int(image.get("width")),
            "height": _int(image.get("height")),
            "rating": first.get("rating"),
        }
    except (KeyError, TypeError, AttributeError, ValueError):
        return ToolResult.error(f"{LABEL} sent an answer that could not be read.", code="upstream")
    return ToolResult.ok(
        f"[{_escape(picked['title'])}]({picked['url']}) · Powered by GIPHY",
        data={"query": args.query, "rating": rating, "gif": picked},
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _escape(text: str) -> str:
    return re.sub(r"([\[\]\\*_`])", r"\\\1", str(text))[:100]


_NOT_QUERIES = frozenset({"a", "an", "the", "some", "one", "that", "this", "it", "me", "us", "those", "these"})

GIF_RULE = IntentRule(
    "gif",
    [
        r"(?:send|post|show|find|give|get|drop|share)(?: me| us)? (?:a |an |some |the |one )?(?:gif|gifs) "
        r"(?:of|about|for|with|showing) (?P<query>.{1,50}?)",
        r"(?:send|post|show|find|give|get|drop|share)(?: me| us)? (?:a |an |some |one )?"
        r"(?P<query>.{1,50}?) (?:gif|gifs)",
        r"(?:a )?gif (?:of|about|for|showing) (?P<query>.{1,50}?)",
        r"gif me (?P<query>.{1,50}?)",
        r"/?gif (?P<query>.{1,50}?)",
    ],
    build=lambda g: {"query": g["query"]} if g["query"].lower() not in _NOT_QUERIES else None,
    hints=[r"\bgifs?\b"],
    suggestion="send a GIF of a happy cat",
)

register(
    ToolSpec(
        name="gif_search",
        title="GIF search",
        description="Find a GIF on GIPHY for a few words, within the workspace's content rating. Returns its URL.",
        input_model=GifInput,
        handler=gif,
        permission=Permission.WORKSPACE_MEMBER,
        rate="10/m",
        cache_seconds=3600,
        cache_scope="global",
        timeout=8.0,
        progress="Looking for a GIF of {query}…",
    ),
    slash=SlashCommand(
        "gif",
        usage="/gif <words>",
        description="a GIF from GIPHY",
        parse=lambda rest: {"query": rest} if rest else {},
        examples=("/gif happy cat",),
    ),
    intents=[GIF_RULE],
)
