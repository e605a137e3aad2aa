"""Reading "remind me to call John in 10 mins" into what, when, and how often.

The request is split into the reminder's text and a *when* phrase. The phrase is read by a
small grammar of our own for what people type to a chat assistant (relative durations, clock
times, day words, weekdays, recurrence) and by dateparser for absolute dates written in any
of the many ways it knows ("3 March", "March 3rd 2027", "2026-12-25", "25 Dec").

Our rules exist where dateparser, measured, reads common phrases wrongly or not at all:
"in half an hour" (nothing), "tomorrow at 9" (tomorrow at the *current* time), "at 9"
(1 September), "at 2pm" when it is 14:30 (silently tomorrow), and recurrence (not its job).

Nothing is guessed silently: a time in the past, a bare hour that could be morning or
evening, a day with no time, or a phrase we cannot read gives a :class:`Clarify` with a
question and, where there is a sensible answer, the options to pick from.

Every time is read in the user's timezone (``tz``) against an injected ``now``; results are
aware datetimes in that zone. Wall-clock arithmetic ("tomorrow at 9", "in 3 days") stays at
the same local time across a daylight-saving change; "in 2 hours" is two real hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dateparser
from dateutil.rrule import rrulestr

MAX_AHEAD = timedelta(days=366 * 5)


@dataclass(frozen=True)
class Option:
    """One answer to a clarifying question: a concrete local time."""

    label: str
    due: datetime


@dataclass(frozen=True)
class Parsed:
    text: str
    due: datetime  # aware, in the user's zone: the first occurrence
    rrule: str = ""  # RFC 5545 RRULE body (no DTSTART), for recurring reminders
    recurrence: str = ""  # how people read it: "every weekday at 09:00"


@dataclass(frozen=True)
class Clarify:
    code: str  # stable: time_past, time_ambiguous, time_missing, time_unreadable, text_missing, too_far
    question: str
    text: str = ""
    options: list[Option] = field(default_factory=list)
    rrule: str = ""
    recurrence: str = ""


ParseResult = Parsed | Clarify

# --- small vocabulary -------------------------------------------------------------------
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
    "a couple of": 2, "a couple": 2, "couple of": 2,
}  # fmt: skip
_UNITS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
}  # fmt: skip
_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_RRULE_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_PERIODS = {"morning": time(9), "afternoon": time(15), "evening": time(18), "night": time(20), "tonight": time(20)}
_MONTHS = (
    "jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|sep|sept|september"
    "|oct|october|nov|november|dec|december"
)

_NUM = r"(?:\d+(?:\.\d+)?|" + "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len, reverse=True)) + ")"
_UNIT = r"(?:" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")"
_WEEKDAY = r"(?:" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")"
_AMPM = r"(?:a\.?m\.?|p\.?m\.?)"

# A duration: "10 mins", "1 hour 30 minutes", "2h30m", "an hour and a half", "half an hour".
_WORD_NUM = "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len, reverse=True))
# A number then a unit: digits may touch the unit ("10m", "1h30m"); words may not ("an" + "d").
_DURATION_ITEM = rf"(?:(?<![\d.])(\d+(?:\.\d+)?)\s*|\b({_WORD_NUM})\s+)({_UNIT})(?![a-z])"
_DURATION_PART = re.sub(r"\((?!\?)", "(?:", _DURATION_ITEM)
_DURATION = (
    rf"(?:half\s+an?\s+hour|a\s+quarter\s+of\s+an\s+hour|{_NUM}\s+and\s+a\s+half\s+{_UNIT}\b"
    rf"|{_DURATION_PART}(?:\s*(?:,|and)?\s*{_DURATION_PART})*(?:\s+and\s+a\s+half)?)"
)
_CLOCK = (
    rf"(?:(?:\d{{1,2}})(?:[:.h]\d{{2}})\s*{_AMPM}?|\d{{1,2}}\s*{_AMPM}|noon|midday|midnight"
    rf"|\d{{1,2}}\s+o'?clock)"
)
_DATE = (
    rf"(?:(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\.?(?:,?\s+\d{{4}})?"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?)"
)


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:{pattern})$", re.IGNORECASE)


_DAYS_AHEAD = _full(rf"in\s+(?P<n>{_NUM})\s+(?P<unit>days?|weeks?)\s+(?P<time>(?:at\s+|@\s*)?.+)")
_RELATIVE = _full(rf"(?:in|after)\s+(?P<d>{_DURATION})|(?P<d2>{_DURATION})(?:\s+(?:from\s+now|later))?")


class _Unreadable(Exception):
    pass


class _Question(Exception):
    def __init__(self, clarify: Clarify) -> None:
        self.clarify = clarify


_STRAY_DATE = re.compile(rf"(?:^|\s)(?:on\s+)?(?P<date>{_DATE})$", re.IGNORECASE)


# --- public entry points ------------------------------------------------------------------
_LEAD = re.compile(r"^\s*(?:@mathia[,:]?\s+)?(?:/remind\b\s*)?(?:(?:please\s+)?remind\s+me\b\s*)?", re.IGNORECASE)
_TEXT_LEAD = re.compile(r"^(?:to|that|about|of|:|-|,)\s+", re.IGNORECASE)


def parse_request(request: str, *, now: datetime, tz: str) -> ParseResult:
    """Read a whole request ("remind me to call John tomorrow at 9") at ``now`` in ``tz``."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    body = _LEAD.sub("", request.strip(), count=1).strip().rstrip(".!?")
    words = body.split()
    best: tuple[str, str] | None = None
    # The longest phrase at the start, then at the end, that reads as a time.
    for cut in range(len(words), 0, -1):
        head = " ".join(words[:cut])
        if _reads(head, local_now):
            best = (head, " ".join(words[cut:]))
            break
    if best is None:
        for cut in range(len(words)):
            tail = " ".join(words[cut:])
            if _reads(tail, local_now):
                best = (tail, " ".join(words[:cut]))
                break
    if best is None:
        text = _clean_text(body)
        return Clarify(
            code="time_unreadable",
            text=text,
            question='I couldn\'t tell when to remind you. Try "in 10 minutes", "tomorrow at 9am", '
            '"on 3 March at noon" or "every Monday at 10am".',
        )
    when, rest = best
    text = _clean_text(rest)
    stray = _STRAY_DATE.search(text)
    if stray:  # "on 31 February at 9am": the time read, the date beside it did not
        return Clarify(
            code="time_unreadable",
            text=text,
            question=f'I couldn\'t read "{stray.group("date")}" as a date. Try "3 April" or "2026-04-03".',
        )
    result = parse_when(when, now=now, tz=tz, text=text)
    if isinstance(result, Parsed) and not text:
        return Clarify(code="text_missing", question="What should I remind you about?", options=[])
    return result


def parse_when(phrase: str, *, now: datetime, tz: str, text: str = "") -> ParseResult:
    """Read a *when* phrase alone ("tomorrow at 9", "every weekday at 9")."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    phrase = " ".join(phrase.strip().lower().split()).rstrip(".!?")
    try:
        result = _when(phrase, local_now, text)
    except _Question as question:
        clarify = question.clarify
        return clarify if clarify.text or not text else replace(clarify, text=text)
    except _Unreadable:
        return Clarify(
            code="time_unreadable",
            text=text,
            question=f'I couldn\'t read "{phrase}" as a time. Try "in 10 minutes", "tomorrow at 9am" or '
            '"every Monday at 10am".',
        )
    if result.due - local_now > MAX_AHEAD:
        return Clarify(code="too_far", text=text, question="That is more than five years away; pick a nearer date.")
    return result


def next_occurrence(*, rrule: str, after: datetime, tz: str) -> datetime | None:
    """The first occurrence of ``rrule`` strictly after ``after``, as an aware UTC datetime.

    The rule runs on local wall-clock times, so "every day at 9" stays at 09:00 across a
    daylight-saving change.
    """
    zone = ZoneInfo(tz)
    local_after = after.astimezone(zone).replace(tzinfo=None)
    rule = rrulestr(rrule, dtstart=local_after)
    following = rule.after(local_after, inc=False)
    if following is None:
        return None
    return _localize(following, zone).astimezone(UTC)


def format_local(moment: datetime, tz: str) -> str:
    """ "Friday 27 March 2026 at 17:00 (Europe/London)": the exact local date and time."""
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} ({tz})"


# --- the grammar --------------------------------------------------------------------------
def _reads(phrase: str, local_now: datetime) -> bool:
    phrase = " ".join(phrase.strip().lower().split())
    if not phrase:
        return False
    try:
        _when(phrase, local_now, "")
    except _Question:
        return True
    except _Unreadable:
        return False
    return True


def _clean_text(text: str) -> str:
    text = text.strip(" ,.;:-")
    previous = None
    while previous != text:
        previous = text
        text = _TEXT_LEAD.sub("", text).strip()
    return text


def _when(phrase: str, now: datetime, text: str) -> Parsed:
    if phrase.startswith(("every ", "each ", "daily", "weekdays", "on weekdays", "weekly", "monthly")):
        return _recurring(phrase, now, text)
    match = _DAYS_AHEAD.match(phrase)
    if match:  # "in 2 days at 9": a day by count, then a time on it
        clock, _ = _time_of(match.group("time"))
        assert clock is not None
        days = int(_number(match.group("n")) * (7 if match.group("unit").startswith("w") else 1))
        return _on_date(
            now.date() + timedelta(days=days), f"in {match.group('n')} {match.group('unit')}", clock, now, text
        )
    match = _RELATIVE.match(phrase)
    if match:
        return Parsed(text=text, due=_add(now, _duration(match.group("d") or match.group("d2"))))
    return _point(phrase, now, text)


def _duration(phrase: str) -> tuple[timedelta, timedelta]:
    """(exact part, calendar part): hours and minutes are real time; days and weeks wall-clock."""
    phrase = phrase.lower()
    if re.fullmatch(r"half\s+an?\s+hour", phrase):
        return timedelta(minutes=30), timedelta()
    if re.fullmatch(r"a\s+quarter\s+of\s+an\s+hour", phrase):
        return timedelta(minutes=15), timedelta()
    exact, calendar = timedelta(), timedelta()
    half = re.search(rf"({_NUM})\s+and\s+a\s+half\s+({_UNIT})\b", phrase)
    parts = (
        [(half.group(1), half.group(2), 0.5)]
        if half
        else [(d or w, u, 0.0) for d, w, u in re.findall(_DURATION_ITEM, phrase)]
    )
    trailing_half = phrase.endswith("and a half") and not half
    for index, (number, unit, extra) in enumerate(parts):
        value = _number(number) + extra
        if trailing_half and index == len(parts) - 1:
            value += 0.5
        name = _UNITS[unit.lower()]
        if name in ("days", "weeks"):
            calendar += timedelta(**{name: value})
        else:
            exact += timedelta(**{name: value})
    if exact + calendar <= timedelta():
        raise _Unreadable
    return exact, calendar


def _number(word: str) -> float:
    word = " ".join(word.lower().split())
    if word in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[word])
    return float(word)


def _add(now: datetime, parts: tuple[timedelta, timedelta]) -> datetime:
    exact, calendar = parts
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    moved = _localize(now.replace(tzinfo=None) + calendar, zone) if calendar else now
    return (moved.astimezone(UTC) + exact).astimezone(zone)


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone``; one that does not exist (spring forward) moves on by the gap."""
    aware = naive.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != naive:  # in the gap: 02:30 on the spring-forward night
        return aware.astimezone(UTC).astimezone(zone)
    return aware


@dataclass
class _Clock:
    value: time
    bare_hour: bool  # "at 9": morning or evening?


def _clock(phrase: str) -> _Clock:
    phrase = phrase.strip().lower()
    if phrase in ("noon", "midday"):
        return _Clock(time(12), False)
    if phrase == "midnight":
        return _Clock(time(0), False)
    match = re.fullmatch(rf"(\d{{1,2}})(?:[:.h](\d{{2}}))?\s*({_AMPM})?(?:\s+o'?clock)?", phrase)
    if not match:
        raise _Unreadable
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    ampm = (match.group(3) or "").replace(".", "")
    if minute > 59:
        raise _Unreadable
    if ampm:
        if not 1 <= hour <= 12:
            raise _Unreadable
        hour = hour % 12 + (12 if ampm == "pm" else 0)
        return _Clock(time(hour, minute), False)
    if hour > 23:
        raise _Unreadable
    # "17:30" and "09:00" are clear; "9" or "5:30" could be morning or evening.
    bare = 1 <= hour <= 12 and not (match.group(2) and match.group(1).startswith("0"))
    return _Clock(time(hour, minute), bare)


def _conventional(clock: _Clock) -> time:
    """A bare hour on a given day, read as people schedule: 7-11 morning, 12 noon, 1-6 afternoon."""
    hour = clock.value.hour
    if clock.bare_hour and 1 <= hour <= 6:
        return time(hour + 12, clock.value.minute)
    return clock.value


_DAY_PREFIX = re.compile(
    rf"^(?P<day>today|tonight|tomorrow|tmrw|tmr|the\s+day\s+after\s+tomorrow|(?:on\s+|this\s+|next\s+)?{_WEEKDAY}"
    rf"|(?:on\s+)?{_DATE})(?:\s+(?P<rest>.+))?$",
    re.IGNORECASE,
)
_TIME_PART = re.compile(
    rf"^(?:(?:at\s+|@\s*)(?P<at>\d{{1,2}}(?:[:.h]\d{{2}})?\s*{_AMPM}?(?:\s+o'?clock)?|noon|midday|midnight)"
    rf"|(?P<clock>{_CLOCK}))"
    rf"(?:\s+(?:in\s+the\s+)?(?P<period>morning|afternoon|evening|night|tonight))?$",
    re.IGNORECASE,
)
_PERIOD_PART = re.compile(
    r"^(?:this\s+|in\s+the\s+)?(?P<period>morning|afternoon|evening|night|tonight)"
    rf"(?:\s+at\s+(?P<at>\d{{1,2}}(?:[:.h]\d{{2}})?\s*{_AMPM}?))?$",
    re.IGNORECASE,
)


def _time_of(rest: str) -> tuple[_Clock | None, str | None]:
    """Read "at 9", "5pm", "noon", "morning", "at 9 in the evening"; (clock, period)."""
    rest = rest.strip()
    match = _TIME_PART.match(rest)
    if match:
        clock = _clock(match.group("at") or match.group("clock"))
        period = (match.group("period") or "").lower() or None
        return _with_period(clock, period), period
    match = _PERIOD_PART.match(rest)
    if match:
        period = match.group("period").lower()
        if match.group("at"):
            return _with_period(_clock(match.group("at")), period), period
        return _Clock(_PERIODS[period], False), period
    raise _Unreadable


def _with_period(clock: _Clock, period: str | None) -> _Clock:
    if period is None or not clock.bare_hour:
        return clock
    hour = clock.value.hour % 12
    if period in ("afternoon", "evening", "night", "tonight"):
        hour += 12
    return _Clock(time(hour, clock.value.minute), False)


def _point(phrase: str, now: datetime, text: str) -> Parsed:
    day_match = _DAY_PREFIX.match(phrase)
    if day_match:
        day_word = day_match.group("day").lower()
        rest = day_match.group("rest")
        clock, _period = _time_of(rest) if rest else (None, None)
        if day_word == "tonight" and clock is None:
            clock = _Clock(_PERIODS["tonight"], False)
        elif day_word == "tonight" and clock is not None and clock.bare_hour:
            clock = _with_period(clock, "tonight")
        return _on_day(day_word, clock, now, text)
    # A time first, maybe followed by a day: "at 5pm", "5pm tomorrow", "at 9 on friday".
    match = re.match(
        rf"^(?P<time>(?:at\s+|@\s*)?(?:{_CLOCK}|\d{{1,2}})(?:\s+(?:in\s+the\s+)?(?:morning|afternoon|evening|night))?"
        rf"|(?:this\s+|in\s+the\s+)?(?:morning|afternoon|evening|tonight))(?:\s+(?P<day>.+))?$",
        phrase,
        re.IGNORECASE,
    )
    if not match:
        raise _Unreadable
    time_text = match.group("time")
    if re.fullmatch(r"\d{1,2}", time_text):
        raise _Unreadable  # a bare number is not a time ("remind me 5")
    clock, _period = _time_of(time_text)
    if match.group("day"):
        day_phrase = re.sub(r"^on\s+", "", match.group("day").strip())
        day_match = _DAY_PREFIX.match(day_phrase)
        if not day_match or day_match.group("rest"):
            raise _Unreadable
        return _on_day(day_match.group("day").lower(), clock, now, text)
    assert clock is not None
    return _today_or_ask(clock, now, text)


def _today_or_ask(clock: _Clock, now: datetime, text: str) -> Parsed:
    """A time with no day: today if it is still ahead; otherwise ask (never a silent tomorrow)."""
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    today = now.date()
    if clock.bare_hour:
        morning = time(clock.value.hour % 12, clock.value.minute)
        evening = time(clock.value.hour % 12 + 12, clock.value.minute)
        candidates = sorted(_next_at(t, now) for t in (morning, evening))
        usual = _next_at(_conventional(clock), now)
        if usual == candidates[0]:
            return Parsed(text=text, due=usual)
        raise _Question(
            Clarify(
                code="time_ambiguous",
                text=text,
                question=f"Did you mean {_spoken(candidates[0], now)} or {_spoken(candidates[1], now)}?",
                options=[Option(_spoken(c, now), c) for c in candidates],
            )
        )
    due = _localize(datetime.combine(today, clock.value), zone)
    if due > now:
        return Parsed(text=text, due=due)
    if clock.value == time(0):  # "at midnight": the coming one, never this morning's
        return Parsed(text=text, due=_next_at(clock.value, now))
    tomorrow = _localize(datetime.combine(today + timedelta(days=1), clock.value), zone)
    raise _Question(
        Clarify(
            code="time_past",
            text=text,
            question=f"{clock.value:%H:%M} has already passed today. Did you mean {_spoken(tomorrow, now)}?",
            options=[Option(_spoken(tomorrow, now), tomorrow)],
        )
    )


def _next_at(value: time, now: datetime) -> datetime:
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    due = _localize(datetime.combine(now.date(), value), zone)
    if due <= now:
        due = _localize(datetime.combine(now.date() + timedelta(days=1), value), zone)
    return due


def _spoken(moment: datetime, now: datetime) -> str:
    """ "today at 21:00", "tomorrow at 09:00", "Monday 30 March at 09:00"."""
    days = (moment.date() - now.date()).days
    if days == 0:
        return f"today at {moment:%H:%M}"
    if days == 1:
        return f"tomorrow at {moment:%H:%M}"
    return f"{moment:%A} {moment.day} {moment:%B} at {moment:%H:%M}"


def _on_day(day_word: str, clock: _Clock | None, now: datetime, text: str) -> Parsed:
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    day, label = _day(day_word, now, clock)
    if clock is None:
        options = [Option(f"{label} at {t:%H:%M}", _localize(datetime.combine(day, t), zone)) for t in (time(9),)]
        raise _Question(
            Clarify(
                code="time_missing",
                text=text,
                question=f'At what time {label}? For example "{label} at 9am".',
                options=[o for o in options if o.due > now],
            )
        )
    return _on_date(day, label, clock, now, text)


def _on_date(day: date, label: str, clock: _Clock, now: datetime, text: str) -> Parsed:
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    value = _conventional(clock)
    due = _localize(datetime.combine(day, value), zone)
    if due <= now:
        later = _localize(datetime.combine(day + timedelta(days=1), value), zone) if day == now.date() else None
        raise _Question(
            Clarify(
                code="time_past",
                text=text,
                question=f"{label.capitalize()} at {value:%H:%M} is in the past."
                + (f" Did you mean {_spoken(later, now)}?" if later else " Pick a time ahead."),
                options=[Option(_spoken(later, now), later)] if later else [],
            )
        )
    return Parsed(text=text, due=due)


def _day(word: str, now: datetime, clock: _Clock | None) -> tuple[date, str]:
    """The date a day word names, and how to say it back."""
    word = " ".join(word.split())
    today = now.date()
    if word in ("today", "tonight"):
        return today, word
    if word in ("tomorrow", "tmrw", "tmr"):
        return today + timedelta(days=1), "tomorrow"
    if word == "the day after tomorrow":
        return today + timedelta(days=2), "the day after tomorrow"
    weekday = re.fullmatch(rf"(?:(on|this|next)\s+)?({_WEEKDAY})", word)
    if weekday:
        which, name = weekday.group(1), _WEEKDAYS[weekday.group(2)]
        ahead = (name - today.weekday()) % 7
        if which == "next":
            ahead = ahead or 7  # "next Friday": the first Friday after today
        elif ahead == 0 and clock is not None:
            # "on Friday" said on a Friday: today if the time is still ahead, else a week on.
            due = _localize(datetime.combine(today, _conventional(clock)), now.tzinfo)  # type: ignore[arg-type]
            if due <= now:
                ahead = 7
        target = today + timedelta(days=ahead)
        return target, _DAY_NAMES[name] + f" {target.day} {target:%B}"
    return _date(word, now)


def _date(word: str, now: datetime) -> tuple[date, str]:
    word = re.sub(r"^on\s+", "", word)
    slash = re.fullmatch(r"(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?", word)
    if slash:
        a, b = int(slash.group(1)), int(slash.group(2))
        if a <= 12 and b <= 12 and a != b:
            first = _safe_date(int(slash.group(3) or now.year), b, a)
            second = _safe_date(int(slash.group(3) or now.year), a, b)
            options = [d for d in (first, second) if d is not None]
            raise _Question(
                Clarify(
                    code="time_ambiguous",
                    question=f"Is {word} the {' or the '.join(f'{d.day} {d:%B}' for d in options)}? "
                    'Write the month as a word, for example "3 April".',
                )
            )
    parsed = dateparser.parse(
        word,
        languages=["en"],
        settings={
            "RELATIVE_BASE": now.replace(tzinfo=None),
            "PREFER_DATES_FROM": "current_period",
            "REQUIRE_PARTS": ["day", "month"],
            "DATE_ORDER": "DMY",
            "PREFER_DAY_OF_MONTH": "first",
        },
    )
    if parsed is None:
        raise _Unreadable
    day = parsed.date()
    has_year = bool(re.search(r"\d{4}", word))
    if day < now.date():
        if has_year:
            raise _Question(Clarify(code="time_past", question=f"{day.day} {day:%B %Y} is in the past."))
        next_year = _safe_date(day.year + 1, day.month, day.day)
        raise (
            _Question(
                Clarify(
                    code="time_past",
                    question=f"{day.day} {day:%B} has passed this year. Did you mean {day.day} {day:%B} "
                    f"{day.year + 1}? Say it with the year.",
                    options=[],
                )
            )
            if next_year
            else _Unreadable()
        )
    return day, f"{day:%A} {day.day} {day:%B}" + (f" {day.year}" if day.year != now.year else "")


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- recurrence ----------------------------------------------------------------------------
_RECUR = re.compile(
    rf"^(?:every|each)\s+(?P<what>day|weekday|working\s+day|weekend(?:\s+day)?|morning|evening|night|week"
    rf"|month|{_WEEKDAY}s?(?:(?:\s*,\s*|\s+and\s+){_WEEKDAY}s?)*)"
    rf"(?:\s+on\s+(?:the\s+)?(?P<on>{_WEEKDAY}|\d{{1,2}}(?:st|nd|rd|th)?))?"
    rf"(?:\s+(?P<time>.+))?$"
    rf"|^(?P<alias>daily|weekdays|on\s+weekdays|weekly|monthly)(?:\s+(?P<time2>.+))?$",
    re.IGNORECASE,
)


def _recurring(phrase: str, now: datetime, text: str) -> Parsed:
    match = _RECUR.match(phrase)
    if not match:
        raise _Unreadable
    what = (match.group("what") or "").lower()
    alias = (match.group("alias") or "").lower()
    time_text = match.group("time") or match.group("time2")
    what = {"daily": "day", "weekdays": "weekday", "on weekdays": "weekday", "weekly": "week", "monthly": "month"}.get(
        alias, what
    )
    on = (match.group("on") or "").lower()
    clock: _Clock | None = None
    if what in ("morning", "evening", "night"):
        clock = _Clock(_PERIODS[what], False)
        what = "day"
    if time_text:
        clock, _ = _time_of(time_text)
    if what in ("day",):
        rule, said = "FREQ=DAILY", "every day"
    elif what in ("weekday", "working day"):
        rule, said = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "every weekday"
    elif what.startswith("weekend"):
        rule, said = "FREQ=WEEKLY;BYDAY=SA,SU", "every weekend day"
    elif what == "week":
        day = _WEEKDAYS.get(on, now.weekday())
        rule, said = f"FREQ=WEEKLY;BYDAY={_RRULE_DAYS[day]}", f"every {_DAY_NAMES[day]}"
    elif what == "month":
        day_of_month = int(re.sub(r"\D", "", on) or now.day)
        if not 1 <= day_of_month <= 31:
            raise _Unreadable
        rule, said = f"FREQ=MONTHLY;BYMONTHDAY={day_of_month}", f"every month on day {day_of_month}"
    else:
        days = sorted({_WEEKDAYS[w.lower()] for w in re.findall(rf"({_WEEKDAY})s?", what)})
        rule = "FREQ=WEEKLY;BYDAY=" + ",".join(_RRULE_DAYS[d] for d in days)
        said = "every " + " and ".join(_DAY_NAMES[d] for d in days)
    if clock is None:
        raise _Question(
            Clarify(
                code="time_missing",
                text=text,
                question=f'At what time {said}? For example "{said} at 9am".',
                rrule=rule,
                recurrence=said,
            )
        )
    value = _conventional(clock)
    rule += f";BYHOUR={value.hour};BYMINUTE={value.minute};BYSECOND=0"
    said += f" at {value:%H:%M}"
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    first = next_occurrence(rrule=rule, after=now - timedelta(microseconds=1), tz=zone.key)
    if first is None:
        raise _Unreadable
    first_local = first.astimezone(zone)
    if first_local <= now:
        first = next_occurrence(rrule=rule, after=now, tz=zone.key)
        assert first is not None
        first_local = first.astimezone(zone)
    return Parsed(text=text, due=first_local, rrule=rule, recurrence=said)
