"""``/weather <place>``: the current weather from OpenWeather's Current Weather Data API (2.5).

``GET https://api.openweathermap.org/data/2.5/weather?q=<place>&units=metric&appid=<key>``.
The place is a city name, optionally with a country code ("Paris,FR"). OpenWeather answers
404 ``{"cod": "404", "message": "city not found"}`` for a place it does not know.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mathia.tools.http import UpstreamFailure, get_json, not_configured
from mathia.tools.registry import IntentRule, Permission, SlashCommand, ToolContext, ToolResult, ToolSpec, register

URL = "https://api.openweathermap.org/data/2.5/weather"
LABEL = "OpenWeather"
KEY_SETTING = "OPENWEATHER_API_KEY"


class WeatherInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    place: str = Field(
        min_length=1, max_length=80, description="A city, optionally with its country code: 'Nairobi', 'Paris, FR'."
    )
    units: Literal["metric", "imperial"] = Field(
        default="metric", description="metric (°C, m/s) or imperial (°F, mph)."
    )

    @field_validator("place")
    @classmethod
    def _clean(cls, value: str) -> str:
        value = re.sub(r"\s+", " ", value).strip(" ,.")
        if not value:
            raise ValueError("name a place")
        return value


def _describe(body: dict[str, Any], units: str) -> tuple[str, dict[str, Any]]:
    main = body["main"]
    conditions = body.get("weather") or [{}]
    description = str(conditions[0].get("description") or "no description")
    wind = (body.get("wind") or {}).get("speed")
    country = (body.get("sys") or {}).get("country")
    name = str(body.get("name") or "")
    where = f"{name}, {country}" if name and country else name or "There"
    degree, speed = ("°C", "m/s") if units == "metric" else ("°F", "mph")
    temp, feels = round(float(main["temp"])), round(float(main.get("feels_like", main["temp"])))
    parts = [f"{description}, {temp} {degree}"]
    if feels != temp:
        parts[0] += f" (feels like {feels} {degree})"
    if main.get("humidity") is not None:
        parts.append(f"humidity {main['humidity']}%")
    if wind is not None:
        parts.append(f"wind {round(float(wind), 1)} {speed}")
    data = {
        "place": name,
        "country": country,
        "description": description,
        "temperature": main["temp"],
        "feels_like": main.get("feels_like"),
        "humidity": main.get("humidity"),
        "wind_speed": wind,
        "units": units,
        "icon": conditions[0].get("icon"),
        "observed_at": body.get("dt"),
    }
    return f"**{where}**: " + ", ".join(parts) + ".", data


async def weather(ctx: ToolContext, args: WeatherInput) -> ToolResult:
    key = settings.OPENWEATHER_API_KEY
    if not key:
        return not_configured("Weather", KEY_SETTING)
    try:
        status, body = await get_json(
            URL,
            label=LABEL,
            key_setting=KEY_SETTING,
            params={"q": args.place, "units": args.units, "appid": key},
            ok_statuses=(200, 404),
        )
    except UpstreamFailure as failure:
        return failure.result
    if status == 404:
        return ToolResult.needs_input(
            f"{LABEL} doesn't know a place called “{args.place}”. Try the city's name, maybe with its country "
            "code: `/weather Paris, FR`.",
            code="not_found",
        )
    try:
        message, data = _describe(body, args.units)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return ToolResult.error(f"{LABEL} sent an answer that could not be read.", code="upstream")
    return ToolResult.ok(message, data)


# --- the parser's rules -----------------------------------------------------------------------
_PLACE = r"(?P<place>[^\W\d_][\w .,'()-]{0,60}?)"
# A bare "Nairobi weather" needs a capital, so "nice weather" and "weather permitting" stay chat.
_CAPITALIZED = r"(?P<place>(?-i:[A-Z])[\w.'-]{1,30}(?: (?-i:[A-Z])[\w.'-]{1,30}){0,2})"
_WHEN = r"(?: (?:today|right now|now|at the moment|currently|this morning|this afternoon|this evening|tonight))?"
_NOT_PLACES = frozenset(
    {
        "here",
        "there",
        "my area",
        "my city",
        "my town",
        "town",
        "the city",
        "the office",
        "the room",
        "this room",
        "general",
        "it",
        "the chat",
        "your opinion",
        "the game",
        "the movie",
        "the book",
        "the news",
        "the meeting",
        "nice",
        "bad",
        "good",
        "great",
        "lovely",
        "terrible",
        "awful",
        "crazy",
        "weird",
        "perfect",
        "this",
        "that",
        "the",
        "what",
        "whats",
        "what's",
        "how",
        "hows",
        "today",
        "tomorrow",
    }
)


def _build(groups: dict[str, str]) -> dict[str, Any] | None:
    place = re.sub(r"^(?:the city of|the town of|beautiful|sunny|rainy|downtown)\s+", "", groups["place"], flags=re.I)
    place = place.strip(" ,.")
    if not place or place.lower() in _NOT_PLACES or len(place.split()) > 5:
        return None
    return {"place": place}


WEATHER_RULE = IntentRule(
    "weather",
    [
        rf"(?:what(?:'s| is| will be)|whats|how(?:'s| is)|hows|tell me|give me|show me|get me|check|check on|"
        rf"what does|what's it like)? ?(?:the )?(?:current )?(?:weather|temperature|temp|conditions)"
        rf"(?: like| look like| looking)? (?:in|at|for|over in|out in) {_PLACE}{_WHEN}(?: like)?",
        rf"(?:what(?:'s| is)|whats|how(?:'s| is)|hows) it (?:like )?(?:outside|out there) in {_PLACE}{_WHEN}",
        rf"(?:is it|will it be|is it going to be) (?:raining|sunny|cold|hot|warm|snowing|windy|cloudy|rainy) "
        rf"(?:in|at) {_PLACE}{_WHEN}",
        rf"(?:how|what) (?:hot|cold|warm) is it (?:in|at) {_PLACE}{_WHEN}",
        rf"weather (?:now |today )?{_CAPITALIZED}",
        rf"{_CAPITALIZED} weather(?: now| today| right now| forecast)?",
        rf"do i need an umbrella in {_PLACE}{_WHEN}",
    ],
    build=_build,
    hints=[r"\bweather\b", r"\bforecast\b", r"\btemperature\b", r"\b(?:rain|raining|rainy|snow|snowing|umbrella)\b"],
    suggestion="what's the weather in Nairobi?",
)

register(
    ToolSpec(
        name="weather",
        title="the weather",
        description="The current weather (conditions, temperature, humidity, wind) in a city, from OpenWeather.",
        input_model=WeatherInput,
        handler=weather,
        permission=Permission.WORKSPACE_MEMBER,
        rate="20/m",
        cache_seconds=600,
        cache_scope="global",
        timeout=8.0,
        progress="Checking the weather in {place}…",
    ),
    slash=SlashCommand(
        "weather", usage="/weather <place>", description="the weather now in a city", examples=("/weather Nairobi",)
    ),
    intents=[WEATHER_RULE],
)
