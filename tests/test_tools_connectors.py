"""The connectors against their APIs, mocked with respx, with bodies shaped as each API documents them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from channels.db import database_sync_to_async

from mathia.tools import audit
from mathia.tools.registry import ToolContext, ToolStatus
from mathia.tools.router import invoke
from tests.chat_helpers import make_chat_team

pytestmark = [pytest.mark.django_db(transaction=True)]

WEATHER_KEY = "ow-test-key-DO-NOT-LEAK-1"
GIPHY_KEY = "gh-test-key-DO-NOT-LEAK-2"
FX_KEY = "fx-test-key-DO-NOT-LEAK-3"
OPENWEATHER = "https://api.openweathermap.org/data/2.5/weather"
GIPHY = "https://api.giphy.com/v1/gifs/search"
FX = f"https://v6.exchangerate-api.com/v6/{FX_KEY}/pair"

# As in OpenWeather's documentation of the Current Weather Data API (units=metric).
NAIROBI = {
    "coord": {"lon": 36.8167, "lat": -1.2833},
    "weather": [{"id": 500, "main": "Rain", "description": "light rain", "icon": "10d"}],
    "base": "stations",
    "main": {
        "temp": 18.4,
        "feels_like": 18.1,
        "temp_min": 17.9,
        "temp_max": 19.2,
        "pressure": 1021,
        "humidity": 82,
        "sea_level": 1021,
        "grnd_level": 833,
    },
    "visibility": 10000,
    "wind": {"speed": 3.09, "deg": 70},
    "rain": {"1h": 0.21},
    "clouds": {"all": 75},
    "dt": 1764590400,
    "sys": {"type": 1, "id": 2558, "country": "KE", "sunrise": 1764557905, "sunset": 1764601842},
    "timezone": 10800,
    "id": 184745,
    "name": "Nairobi",
    "cod": 200,
}


def giphy_gif(gif_id: str, title: str, rating: str) -> dict[str, Any]:
    """A GIF object as GIPHY's search documents it (the fields Mathia reads, and a few more)."""

    def rendition(width: int, height: int, name: str) -> dict[str, str]:
        return {
            "height": str(height),
            "width": str(width),
            "size": "123456",
            "url": f"https://media2.giphy.com/media/{gif_id}/{name}.gif?cid=abc&rid={name}.gif&ct=g",
            "mp4_size": "45678",
            "mp4": f"https://media2.giphy.com/media/{gif_id}/{name}.mp4?cid=abc&rid={name}.mp4&ct=g",
            "webp_size": "34567",
            "webp": f"https://media2.giphy.com/media/{gif_id}/{name}.webp?cid=abc&rid={name}.webp&ct=g",
        }

    return {
        "type": "gif",
        "id": gif_id,
        "url": f"https://giphy.com/gifs/{gif_id}",
        "slug": f"cat-{gif_id}",
        "bitly_gif_url": f"https://gph.is/g/{gif_id}",
        "bitly_url": f"https://gph.is/g/{gif_id}",
        "embed_url": f"https://giphy.com/embed/{gif_id}",
        "username": "",
        "source": "",
        "title": title,
        "rating": rating,
        "content_url": "",
        "source_tld": "",
        "source_post_url": "",
        "is_sticker": 0,
        "import_datetime": "2016-06-01 17:29:31",
        "trending_datetime": "0000-00-00 00:00:00",
        "images": {
            "original": rendition(480, 270, "giphy"),
            "downsized": rendition(480, 270, "giphy-downsized"),
            "fixed_height": rendition(356, 200, "200"),
            "fixed_width": rendition(200, 113, "200w"),
        },
        "analytics_response_payload": "e=abc",
    }


def giphy_search(*gifs: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": list(gifs),
        "pagination": {"total_count": 4562, "count": len(gifs), "offset": 0},
        "meta": {"status": 200, "msg": "OK", "response_id": "5f1f8e6a3c2d1b0a"},
    }


def fx_pair(base: str, target: str, rate: float, result: float) -> dict[str, Any]:
    """ExchangeRate-API v6's pair response, with an amount."""
    return {
        "result": "success",
        "documentation": "https://www.exchangerate-api.com/docs",
        "terms_of_use": "https://www.exchangerate-api.com/terms",
        "time_last_update_unix": 1764547201,
        "time_last_update_utc": "Mon, 01 Dec 2026 00:00:01 +0000",
        "time_next_update_unix": 1764633601,
        "time_next_update_utc": "Tue, 02 Dec 2026 00:00:01 +0000",
        "base_code": base,
        "target_code": target,
        "conversion_rate": rate,
        "conversion_result": result,
    }


@pytest.fixture
def team() -> dict[str, Any]:
    return make_chat_team()


@pytest.fixture
def keys(settings: Any) -> None:
    settings.OPENWEATHER_API_KEY = WEATHER_KEY
    settings.GIPHY_API_KEY = GIPHY_KEY
    settings.EXCHANGERATE_API_KEY = FX_KEY
    settings.GIPHY_RATING = "g"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    audit.AUTO_FLUSH = False
    with respx.mock(assert_all_called=False) as router:
        yield router
    audit.AUTO_FLUSH = True


async def call(team: dict[str, Any], tool: str, arguments: dict[str, Any]) -> Any:
    ctx = ToolContext(user=team["ada"], workspace_id=team["workspace"].pk, room_id=team["general"].pk, via="slash")
    return await invoke(tool, arguments, ctx=ctx)


# --- missing keys ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tool", "arguments", "setting"),
    [
        ("weather", {"place": "Nairobi"}, "OPENWEATHER_API_KEY"),
        ("gif_search", {"query": "cat"}, "GIPHY_API_KEY"),
        ("currency_convert", {"amount": 1, "from_currency": "usd", "to_currency": "kes"}, "EXCHANGERATE_API_KEY"),
    ],
)
async def test_a_missing_key_names_the_exact_variable_to_set(
    team: dict[str, Any], api: respx.MockRouter, settings: Any, tool: str, arguments: dict[str, Any], setting: str
) -> None:
    setattr(settings, setting, "")
    result = await call(team, tool, arguments)
    assert (result.status, result.code) == (ToolStatus.ERROR, "not_configured")
    assert f"`{setting}`" in result.message
    assert result.data == {"setting": setting}
    assert not api.calls  # nothing was sent anywhere


# --- weather ---------------------------------------------------------------------------------
async def test_weather(team: dict[str, Any], keys: None, api: respx.MockRouter) -> None:
    route = api.get(OPENWEATHER).mock(return_value=httpx.Response(200, json=NAIROBI))
    result = await call(team, "weather", {"place": " Nairobi "})
    assert result.status == ToolStatus.OK
    assert result.message == "**Nairobi, KE**: light rain, 18 °C, humidity 82%, wind 3.1 m/s."
    assert result.data["temperature"] == 18.4
    assert result.data["country"] == "KE"
    request = route.calls.last.request
    assert dict(request.url.params) == {"q": "Nairobi", "units": "metric", "appid": WEATHER_KEY}
    # The second ask is served from the cache: no second request.
    again = await call(team, "weather", {"place": "Nairobi"})
    assert again.cached
    assert route.call_count == 1


async def test_weather_in_imperial_units_says_feels_like(
    team: dict[str, Any], keys: None, api: respx.MockRouter
) -> None:
    body = {**NAIROBI, "main": {**NAIROBI["main"], "temp": 65.1, "feels_like": 61.0}}
    api.get(OPENWEATHER).mock(return_value=httpx.Response(200, json=body))
    result = await call(team, "weather", {"place": "Nairobi", "units": "imperial"})
    assert "65 °F (feels like 61 °F)" in result.message
    assert "mph" in result.message


async def test_weather_for_an_unknown_place_asks_again(team: dict[str, Any], keys: None, api: respx.MockRouter) -> None:
    api.get(OPENWEATHER).mock(return_value=httpx.Response(404, json={"cod": "404", "message": "city not found"}))
    result = await call(team, "weather", {"place": "Atlantis"})
    assert (result.status, result.code) == (ToolStatus.NEEDS_INPUT, "not_found")
    assert "Atlantis" in result.message


@pytest.mark.parametrize(
    ("response", "code", "words"),
    [
        (
            httpx.Response(
                401,
                json={
                    "cod": 401,
                    "message": f"Invalid API key {WEATHER_KEY}. Please see https://openweathermap.org/faq#error401.",
                },
            ),
            "upstream_auth",
            "`OPENWEATHER_API_KEY`",
        ),
        (
            httpx.Response(
                429,
                json={
                    "cod": 429,
                    "message": "Your account is temporary blocked due to exceeding of requests limitation",
                },
                headers={"Retry-After": "30"},
            ),
            "upstream_rate_limited",
            "wait 30 s",
        ),
        (httpx.Response(500, json={"cod": 500, "message": "Internal error"}), "upstream", "HTTP 500"),
        (httpx.Response(502, text="<html>Bad gateway</html>"), "upstream", "HTTP 502"),
        (httpx.Response(200, text="not json"), "upstream", "could not be read"),
        (httpx.Response(200, json={"cod": 200, "name": "Nairobi"}), "upstream", "could not be read"),
    ],
    ids=["bad-key", "rate-limited", "500", "502-html", "not-json", "wrong-shape"],
)
async def test_weather_upstream_failures_answer_clearly_and_never_ok(
    team: dict[str, Any],
    keys: None,
    api: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    response: httpx.Response,
    code: str,
    words: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get(OPENWEATHER).mock(return_value=response)
    result = await call(team, "weather", {"place": "Nairobi"})
    assert (result.status, result.code) == (ToolStatus.ERROR, code)
    assert words in result.message
    assert WEATHER_KEY not in result.message + str(result.data) + caplog.text
    # A failure is not cached: the next ask tries again.
    api.get(OPENWEATHER).mock(return_value=httpx.Response(200, json=NAIROBI))
    assert (await call(team, "weather", {"place": "Nairobi"})).is_ok


async def test_weather_timeouts_and_dead_connections(team: dict[str, Any], keys: None, api: respx.MockRouter) -> None:
    api.get(OPENWEATHER).mock(side_effect=httpx.ReadTimeout("slow"))
    result = await call(team, "weather", {"place": "Nairobi"})
    assert (result.status, result.code) == (ToolStatus.ERROR, "timeout")
    assert "did not answer in time" in result.message
    api.get(OPENWEATHER).mock(side_effect=httpx.ConnectError("refused"))
    result = await call(team, "weather", {"place": "Paris"})
    assert (result.status, result.code) == (ToolStatus.ERROR, "upstream")
    assert "Could not reach OpenWeather" in result.message


def test_httpx_does_not_log_request_urls_which_hold_keys() -> None:
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


# --- GIFs ------------------------------------------------------------------------------------
async def test_gif_search_with_the_rating_filter(team: dict[str, Any], keys: None, api: respx.MockRouter) -> None:
    route = api.get(GIPHY).mock(
        return_value=httpx.Response(200, json=giphy_search(giphy_gif("abc123", "Happy Cat GIF", "g")))
    )
    result = await call(team, "gif_search", {"query": "happy cat"})
    assert result.is_ok
    assert result.message.startswith("[Happy Cat GIF](https://media2.giphy.com/media/abc123/giphy-downsized.gif")
    assert "Powered by GIPHY" in result.message
    assert result.data["gif"]["width"] == 480
    params = dict(route.calls.last.request.url.params)
    assert params["rating"] == "g"
    assert params["q"] == "happy cat"
    assert params["api_key"] == GIPHY_KEY


async def test_gif_rating_never_goes_past_the_workspace_ceiling(
    team: dict[str, Any], keys: None, api: respx.MockRouter, settings: Any
) -> None:
    settings.GIPHY_RATING = "pg"
    route = api.get(GIPHY).mock(
        return_value=httpx.Response(
            200,
            json=giphy_search(giphy_gif("r1", "Too much", "r"), giphy_gif("pg1", "Fine", "pg")),
        )
    )
    result = await call(team, "gif_search", {"query": "party", "rating": "r"})
    assert dict(route.calls.last.request.url.params)["rating"] == "pg"  # asked r, got the ceiling
    assert result.data["gif"]["id"] == "pg1"  # and an r result slipping through is dropped
    stricter = await call(team, "gif_search", {"query": "party", "rating": "g"})
    assert dict(route.calls.last.request.url.params)["rating"] == "g"
    assert stricter.data["gif"] is None
    assert "No GIFs found" in stricter.message


async def test_gif_errors(team: dict[str, Any], keys: None, api: respx.MockRouter) -> None:
    api.get(GIPHY).mock(return_value=httpx.Response(200, json={"data": [], "meta": {"status": 200, "response_id": ""}}))
    synthetic = await call(team, "gif_search", {"query": "cat"})  # GIPHY's documented synthetic response
    assert (synthetic.status, synthetic.code) == (ToolStatus.ERROR, "upstream")
    api.get(GIPHY).mock(
        return_value=httpx.Response(401, json={"meta": {"status": 401, "msg": "No API key found in request."}})
    )
    assert (await call(team, "gif_search", {"query": "dog"})).code == "upstream_auth"
    api.get(GIPHY).mock(
        return_value=httpx.Response(429, json={"meta": {"status": 429, "msg": "API rate limit exceeded"}})
    )
    limited = await call(team, "gif_search", {"query": "owl"})
    assert limited.code == "upstream_rate_limited"
    assert GIPHY_KEY not in limited.message
    bad = await call(team, "gif_search", {"query": ""})
    assert bad.status == ToolStatus.NEEDS_INPUT


# --- currency --------------------------------------------------------------------------------
async def test_currency_conversion(team: dict[str, Any], keys: None, api: respx.MockRouter) -> None:
    route = api.get(f"{FX}/USD/KES/100").mock(
        return_value=httpx.Response(200, json=fx_pair("USD", "KES", 129.1812, 12918.12))
    )
    result = await call(team, "currency_convert", {"amount": "100", "from_currency": "usd", "to_currency": "kes"})
    assert result.is_ok
    assert result.message.startswith("**100.00 USD** = **12,918.12 KES** (1 USD = 129.18 KES")
    assert "Mon, 01 Dec 2026" in result.message
    assert result.data["rate"] == "129.1812"
    assert route.call_count == 1
    by_name = await call(team, "currency_convert", {"amount": 100, "from_currency": "dollars", "to_currency": "KES"})
    assert by_name.cached  # the same conversion, spelled differently


@pytest.mark.parametrize(
    ("error_type", "status", "code"),
    [
        ("unsupported-code", ToolStatus.NEEDS_INPUT, "not_found"),
        ("malformed-request", ToolStatus.ERROR, "upstream"),
        ("invalid-key", ToolStatus.ERROR, "upstream_auth"),
        ("inactive-account", ToolStatus.ERROR, "upstream_auth"),
        ("quota-reached", ToolStatus.ERROR, "upstream_rate_limited"),
    ],
)
async def test_currency_api_errors(
    team: dict[str, Any], keys: None, api: respx.MockRouter, error_type: str, status: ToolStatus, code: str
) -> None:
    body = {
        "result": "error",
        "documentation": "https://www.exchangerate-api.com/docs",
        "terms-of-use": "https://www.exchangerate-api.com/terms",
        "error-type": error_type,
    }
    http_status = {"invalid-key": 403, "inactive-account": 403, "quota-reached": 429}.get(error_type, 404)
    if http_status == 429:
        http_status = 200  # ExchangeRate-API reports the quota in the body
    api.get(f"{FX}/EUR/XCD/5").mock(return_value=httpx.Response(http_status, json=body))
    result = await call(team, "currency_convert", {"amount": 5, "from_currency": "EUR", "to_currency": "XCD"})
    assert (result.status, result.code) == (status, code)
    assert FX_KEY not in result.message


async def test_currency_codes_are_checked_before_any_request(
    team: dict[str, Any], keys: None, api: respx.MockRouter
) -> None:
    result = await call(team, "currency_convert", {"amount": 5, "from_currency": "ABC", "to_currency": "USD"})
    assert result.status == ToolStatus.NEEDS_INPUT
    assert "`ABC`" in result.message
    for bad in ({"amount": -5, "from_currency": "usd", "to_currency": "kes"}, {"from_currency": "usd"}):
        assert (await call(team, "currency_convert", bad)).status == ToolStatus.NEEDS_INPUT
    assert not api.calls


async def test_help_lists_every_registered_command(team: dict[str, Any]) -> None:
    result = await call(team, "help", {})
    for usage in ("/help", "/weather <place>", "/gif <words>", "/fx <amount> <from> <to>"):
        assert f"`{usage}`" in result.message
    assert {c["name"] for c in result.data["commands"]} >= {"help", "weather", "gif", "fx"}
    await database_sync_to_async(lambda: None)()
