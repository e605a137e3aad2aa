"""``/fx <amount> <from> <to>``: currency conversion from ExchangeRate-API (v6, pair endpoint).

``GET https://v6.exchangerate-api.com/v6/<key>/pair/<FROM>/<TO>/<AMOUNT>`` answers
``{"result": "success", ..., "base_code", "target_code", "conversion_rate", "conversion_result"}``
or ``{"result": "error", "error-type": "unsupported-code" | "malformed-request" | "invalid-key" |
"inactive-account" | "quota-reached"}``. The key is part of the path, so URLs are never logged
(``mathia.tools.http``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from django.conf import settings
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mathia.tools.http import UpstreamFailure, get_json, not_configured
from mathia.tools.registry import (
    IntentRule,
    Permission,
    SlashCommand,
    SlashUsageError,
    ToolContext,
    ToolResult,
    ToolSpec,
    register,
)

URL = "https://v6.exchangerate-api.com/v6/{key}/pair/{base}/{target}/{amount}"
LABEL = "ExchangeRate-API"
KEY_SETTING = "EXCHANGERATE_API_KEY"

# ISO 4217 codes ExchangeRate-API supports.
CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP FOK GBP GEL GGP GHS
    GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS IMP INR IQD IRR ISK JEP JMD JOD JPY KES KGS KHR KID
    KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
    NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SLL SOS SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY TTD TVD TWD TZS UAH UGX USD UYU UZS VES
    VND VUV WST XAF XCD XCG XDR XOF XPF YER ZAR ZMW ZWL
    """.split()  # noqa: SIM905 (a table reads better as text)
)
# Names and symbols people write, to codes. Ambiguous ones ("dollars", "shillings") go to the
# currency most teams mean; a code is always exact.
NAMES = {
    "dollar": "USD",
    "dollars": "USD",
    "us dollar": "USD",
    "us dollars": "USD",
    "bucks": "USD",
    "usd": "USD",
    "$": "USD",
    "euro": "EUR",
    "euros": "EUR",
    "€": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "sterling": "GBP",
    "british pounds": "GBP",
    "£": "GBP",
    "yen": "JPY",
    "¥": "JPY",
    "shilling": "KES",
    "shillings": "KES",
    "kenyan shilling": "KES",
    "kenyan shillings": "KES",
    "ksh": "KES",
    "kshs": "KES",
    "ugandan shillings": "UGX",
    "tanzanian shillings": "TZS",
    "naira": "NGN",
    "₦": "NGN",
    "rand": "ZAR",
    "rands": "ZAR",
    "cedi": "GHS",
    "cedis": "GHS",
    "rupee": "INR",
    "rupees": "INR",
    "₹": "INR",
    "yuan": "CNY",
    "renminbi": "CNY",
    "franc": "CHF",
    "swiss francs": "CHF",
    "canadian dollars": "CAD",
    "australian dollars": "AUD",
    "birr": "ETB",
    "dirham": "AED",
    "dirhams": "AED",
    "peso": "MXN",
    "pesos": "MXN",
    "real": "BRL",
    "reais": "BRL",
    "won": "KRW",
    "ruble": "RUB",
    "rubles": "RUB",
    "lira": "TRY",
}


def _to_code(value: object) -> object:
    if isinstance(value, str):
        text = value.strip().lower()
        return NAMES.get(text, text.upper())
    return value


Currency = Annotated[
    str,
    BeforeValidator(_to_code),
    Field(pattern=r"^[A-Z]{3}$", description="An ISO 4217 code such as USD, EUR, KES (names like 'euros' work)."),
]


class FxInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(default=Decimal(1), gt=0, le=Decimal("1e15"), description="How much to convert.")
    from_currency: Currency
    to_currency: Currency


def _amount_text(value: Decimal) -> str:
    if value >= 100:
        return f"{value:,.2f}"
    if value >= 1:
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{value:.6g}"


async def convert(ctx: ToolContext, args: FxInput) -> ToolResult:
    for code in (args.from_currency, args.to_currency):
        if code not in CODES:
            return ToolResult.needs_input(f"I don't know the currency `{code}`; use a code like USD, EUR or KES.")
    key = settings.EXCHANGERATE_API_KEY
    if not key:
        return not_configured("Currency conversion", KEY_SETTING)
    amount = format(args.amount.normalize(), "f")
    url = URL.format(key=key, base=args.from_currency, target=args.to_currency, amount=amount)
    try:
        _, body = await get_json(url, label=LABEL, key_setting=KEY_SETTING, ok_statuses=(200, 400, 403, 404))
    except UpstreamFailure as failure:
        return failure.result
    if not isinstance(body, dict):
        return ToolResult.error(f"{LABEL} sent an answer that could not be read.", code="upstream")
    if body.get("result") != "success":
        return _error(str(body.get("error-type") or ""), args)
    try:
        rate = Decimal(str(body["conversion_rate"]))
        result = Decimal(str(body.get("conversion_result", rate * args.amount)))
    except (KeyError, InvalidOperation):
        return ToolResult.error(f"{LABEL} sent an answer that could not be read.", code="upstream")
    updated = body.get("time_last_update_utc")
    message = (
        f"**{_amount_text(args.amount)} {args.from_currency}** = **{_amount_text(result)} {args.to_currency}** "
        f"(1 {args.from_currency} = {_amount_text(rate)} {args.to_currency}"
        + (f"; rates of {updated}" if updated else "")
        + ")."
    )
    return ToolResult.ok(
        message,
        data={
            "amount": str(args.amount),
            "from": args.from_currency,
            "to": args.to_currency,
            "rate": str(rate),
            "result": str(result),
            "updated": updated,
        },
    )


def _error(kind: str, args: FxInput) -> ToolResult:
    if kind == "unsupported-code":
        return ToolResult.needs_input(
            f"{LABEL} does not convert {args.from_currency} to {args.to_currency}.", code="not_found"
        )
    if kind in ("invalid-key", "inactive-account"):
        return ToolResult.error(
            f"{LABEL} refused Mathia's key ({kind}); an admin checks `{KEY_SETTING}`.",
            code="upstream_auth",
            data={"setting": KEY_SETTING},
        )
    if kind == "quota-reached":
        return ToolResult.error(
            f"Mathia has used up its {LABEL} quota for now; try again later.", code="upstream_rate_limited"
        )
    return ToolResult.error(f"{LABEL} could not convert that ({kind or 'unknown error'}).", code="upstream")


# --- slash command and parser -----------------------------------------------------------------
_NUMBER = re.compile(r"^(?P<sym>[$€£¥₦₹])?(?P<num>\d[\d,]*(?:\.\d+)?|\.\d+)(?P<mult>k|m|bn)?$", re.IGNORECASE)
_MULTIPLIERS = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "million": 1_000_000, "bn": 10**9, "billion": 10**9}


def _number(text: str) -> tuple[Decimal, str | None] | None:
    match = _NUMBER.match(text.replace(" ", ""))
    if match is None:
        return None
    try:
        value = Decimal(match["num"].replace(",", ""))
    except InvalidOperation:
        return None
    if match["mult"]:
        value *= _MULTIPLIERS[match["mult"].lower()]
    value = Decimal(format(value.normalize(), "f"))  # 1.5k -> 1500, not 1500.0 or 1.5E+3
    return value, (NAMES[match["sym"]] if match["sym"] else None)


def parse_fx_line(rest: str) -> dict[str, Any]:
    """``100 usd kes``, ``100 usd to kes``, ``usd kes`` (1), ``$20 in eur``."""
    words = [w for w in re.split(r"\s+", rest.strip()) if w and w.lower() not in ("to", "in", "into", "=", "->")]
    amount: Decimal | None = None
    symbol = None
    if words:
        parsed = _number(words[0])
        if parsed is not None:
            amount, symbol = parsed
            words = words[1:]
    if symbol is not None:
        words.insert(0, symbol)
    if len(words) != 2:
        raise SlashUsageError("Give an amount and two currencies, like `/fx 100 usd kes`.")
    return {"amount": str(amount or 1), "from_currency": words[0], "to_currency": words[1]}


_CURRENCY_WORDS = "|".join(sorted((re.escape(k) for k in NAMES if len(k) > 1), key=len, reverse=True))
_CUR = rf"(?:{_CURRENCY_WORDS}|[a-z]{{3}})"
_AMT = r"(?P<amount>[$€£¥₦₹]?\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:k|m|bn|thousand|million|billion))?)"
_FROM = rf"(?P<from>{_CUR})"
_TO = rf"(?P<to>{_CUR})"
_SEP = r"(?:to|into|in|in terms of|=|->|vs|against|and)"


def _fx_build(groups: dict[str, str]) -> dict[str, Any] | None:
    amount_text = groups.get("amount", "").lower().replace(" ", "")
    for word, factor in (("thousand", "k"), ("million", "m"), ("billion", "bn")):
        amount_text = amount_text.replace(word, factor)
    amount, symbol = Decimal(1), None
    if amount_text:
        parsed = _number(amount_text)
        if parsed is None:
            return None
        amount, symbol = parsed
    source = groups.get("from") or symbol
    target = groups.get("to")
    if source is None or target is None:
        return None
    codes = [_to_code(source), _to_code(target)]
    if any(code not in CODES for code in codes) or codes[0] == codes[1]:
        return None  # "convert 100 cats to dogs" is not a currency request
    return {"amount": str(amount), "from_currency": codes[0], "to_currency": codes[1]}


FX_RULE = IntentRule(
    "currency",
    [
        rf"convert {_AMT}? ?{_FROM}? ?{_SEP} {_TO}",
        rf"(?:(?:how much|what) (?:is|are|would be|will)|what's|whats) {_AMT} ?{_FROM}? (?:in|to|into|worth in) {_TO}",
        rf"{_AMT} ?{_FROM}? {_SEP} {_TO}",
        rf"(?:what(?:'s| is) )?(?:the )?(?:current )?(?:exchange |conversion |fx )?rate (?:from |for |of )?"
        rf"{_FROM} ?(?:to|and|vs|against|/) ?{_TO}(?: today| now)?",
        rf"(?:what(?:'s| is) )?(?:the )?{_FROM} ?(?:to|/|vs) ?{_TO}(?: exchange)? rate(?: today| now)?",
        rf"how many {_TO} (?:is|are|for|in|make|do i get for) {_AMT} ?{_FROM}?",
        rf"how many {_TO} (?:to|per|in|for) (?:a|one|1) {_FROM}",
        rf"(?:exchange|change) {_AMT} ?{_FROM}? (?:to|into|for) {_TO}",
        rf"{_FROM} to {_TO}",
    ],
    build=_fx_build,
    hints=[
        r"\bexchange rate\b",
        r"\bconvert\b.*\b(?:currency|usd|eur|kes|gbp|dollars?|euros?|shillings?)\b",
        r"\bcurrenc(?:y|ies)\b",
    ],
    suggestion="convert 100 USD to KES",
)

register(
    ToolSpec(
        name="currency_convert",
        title="currency conversion",
        description="Convert an amount between two currencies (ISO 4217 codes) at today's rate, from ExchangeRate-API.",
        input_model=FxInput,
        handler=convert,
        permission=Permission.WORKSPACE_MEMBER,
        rate="20/m",
        cache_seconds=1800,
        cache_scope="global",
        timeout=8.0,
        progress=lambda args: f"Converting {args.from_currency} to {args.to_currency}…",
    ),
    slash=SlashCommand(
        "fx",
        usage="/fx <amount> <from> <to>",
        description="convert between currencies",
        parse=parse_fx_line,
        examples=("/fx 100 usd kes",),
    ),
    intents=[FX_RULE],
)
