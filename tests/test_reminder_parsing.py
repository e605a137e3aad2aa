"""How Mathia reads "remind me ..." requests: a table of phrasings at a fixed "now".

Now is Friday 27 March 2026 at 14:30, local time, in each zone. London changes to summer time
on Sunday 29 March at 01:00 (the clocks go from 01:00 to 02:00); Sydney leaves it on Sunday
5 April; New York changed on 8 March. An expected value is the local due time, or ``?code``
for a request that must get a clarifying question instead of a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mathia.reminders.parsing import Clarify, Parsed, format_local, next_occurrence, parse_request

LON, NYC, NBO, TYO, SYD = "Europe/London", "America/New_York", "Africa/Nairobi", "Asia/Tokyo", "Australia/Sydney"


def _now(tz: str) -> datetime:
    return datetime(2026, 3, 27, 14, 30, tzinfo=ZoneInfo(tz))


# (zone, request, expected local due "YYYY-MM-DD HH:MM" or "?code", expected text or None)
TABLE = [
    # relative: from now, exactly
    (LON, "remind me to call John in 10 mins", "2026-03-27 14:40", "call John"),
    (LON, "remind me in 10 minutes to stretch", "2026-03-27 14:40", "stretch"),
    (LON, "/remind 10 minutes check the oven", "2026-03-27 14:40", "check the oven"),
    (LON, "remind me to send the report in 2 hours", "2026-03-27 16:30", "send the report"),
    (LON, "remind me in half an hour to move the car", "2026-03-27 15:00", "move the car"),
    (LON, "remind me to x in an hour", "2026-03-27 15:30", "x"),
    (LON, "remind me to x in an hour and a half", "2026-03-27 16:00", "x"),
    (LON, "remind me to x in 1h30m", "2026-03-27 16:00", "x"),
    (LON, "remind me to x in 90 seconds", "2026-03-27 14:31", "x"),
    (LON, "remind me to x in a couple of minutes", "2026-03-27 14:32", "x"),
    (LON, "remind me to x in 45 mins", "2026-03-27 15:15", "x"),
    (LON, "remind me to x in 1.5 hours", "2026-03-27 16:00", "x"),
    (LON, "remind me to x in a minute", "2026-03-27 14:31", "x"),
    (LON, "remind me to x 20 minutes from now", "2026-03-27 14:50", "x"),
    # days are wall-clock (across the change), hours are real time
    (LON, "remind me to x in 3 days", "2026-03-30 14:30", "x"),
    (LON, "remind me to x in 48 hours", "2026-03-29 15:30", "x"),
    (LON, "remind me to x in 2 weeks", "2026-04-10 14:30", "x"),
    (LON, "remind me in 2 days at 9 to x", "2026-03-29 09:00", "x"),
    # clock times today
    (LON, "remind me to call mum at 5pm", "2026-03-27 17:00", "call mum"),
    (LON, "at 17:30 leave for the station", "2026-03-27 17:30", "leave for the station"),
    (LON, "remind me to x at 5:45 pm", "2026-03-27 17:45", "x"),
    (LON, "remind me to x at 5.30pm", "2026-03-27 17:30", "x"),
    (LON, "remind me to x at 6 o'clock", "2026-03-27 18:00", "x"),
    (LON, "remind me to x @ 4pm", "2026-03-27 16:00", "x"),
    (LON, "remind me to x at 5", "2026-03-27 17:00", "x"),
    (LON, "remind me to x at 11pm", "2026-03-27 23:00", "x"),
    (LON, "remind me to x at midnight", "2026-03-28 00:00", "x"),
    (LON, "remind me to x tonight", "2026-03-27 20:00", "x"),
    (LON, "remind me to x this evening", "2026-03-27 18:00", "x"),
    # ...that must be asked about
    (LON, "remind me to x at 9", "?time_ambiguous", "x"),
    (LON, "remind me to x at 2pm", "?time_past", "x"),
    (LON, "remind me to x at 14:00", "?time_past", "x"),
    (LON, "remind me to x at noon", "?time_past", "x"),
    (LON, "remind me to x this morning", "?time_past", "x"),
    # days
    (LON, "remind me tomorrow at 9 to call John", "2026-03-28 09:00", "call John"),
    (LON, "remind me to x tomorrow at 9am", "2026-03-28 09:00", "x"),
    (LON, "remind me to x tomorrow at 3", "2026-03-28 15:00", "x"),
    (LON, "remind me to x tomorrow morning", "2026-03-28 09:00", "x"),
    (LON, "remind me to x tomorrow afternoon", "2026-03-28 15:00", "x"),
    (LON, "remind me to x tomorrow evening at 7", "2026-03-28 19:00", "x"),
    (LON, "remind me to x tomorrow at 7 in the evening", "2026-03-28 19:00", "x"),
    (LON, "remind me to x tmrw at 10", "2026-03-28 10:00", "x"),
    (LON, "remind me to x 5pm tomorrow", "2026-03-28 17:00", "x"),
    (LON, "remind me to x at 9 on Monday", "2026-03-30 09:00", "x"),
    (LON, "remind me next Friday morning to pay the rent", "2026-04-03 09:00", "pay the rent"),
    (LON, "remind me to x next friday at 10:15", "2026-04-03 10:15", "x"),
    (LON, "remind me to x on friday at 3pm", "2026-03-27 15:00", "x"),
    (LON, "remind me to x on friday at 9am", "2026-04-03 09:00", "x"),
    (LON, "remind me to x this friday at 4pm", "2026-03-27 16:00", "x"),
    (LON, "remind me to x monday at 10am", "2026-03-30 10:00", "x"),
    (LON, "remind me to x sunday at 2:30", "2026-03-29 14:30", "x"),
    # 01:30 on 29 March does not exist in London: the clocks jump from 01:00 to 02:00
    (LON, "remind me to x sunday at 1:30am", "2026-03-29 02:30", "x"),
    (LON, "remind me to x the day after tomorrow at noon", "2026-03-29 12:00", "x"),
    (LON, "remind me to x tomorrow", "?time_missing", "x"),
    (LON, "remind me to prepare slides on Monday", "?time_missing", "prepare slides"),
    # dates
    (LON, "remind me to renew on 3 April at noon", "2026-04-03 12:00", "renew"),
    (LON, "remind me on 3 March at noon to renew", "?time_past", "renew"),
    (LON, "remind me to renew on 3 March 2027 at noon", "2027-03-03 12:00", "renew"),
    (LON, "remind me to x March 30 at 9am", "2026-03-30 09:00", "x"),
    (LON, "remind me to x on the 1st of april at 8:00", "2026-04-01 08:00", "x"),
    (LON, "remind me to buy presents on 25/12 at 9am", "2026-12-25 09:00", "buy presents"),
    (LON, "remind me to x on 3/4 at 9am", "?time_ambiguous", "x"),
    (LON, "remind me to x on 2026-04-10 at 17:00", "2026-04-10 17:00", "x"),
    # unreadable or incomplete
    (LON, "remind me to x on 31 February at 9am", "?time_unreadable", None),
    (LON, "remind me to x at 25:00", "?time_unreadable", None),
    (LON, "remind me to call John", "?time_unreadable", None),
    (LON, "remind me about the standup", "?time_unreadable", None),
    (LON, "remind me to x in 0 minutes", "?time_unreadable", None),
    (LON, "remind me to x in 10 years", "?time_unreadable", None),
    (LON, "remind me in 10 minutes", "?text_missing", None),
    # recurrence
    (LON, "remind me every weekday at 9 to stand up", "2026-03-30 09:00", "stand up"),
    (LON, "every Monday at 10am team sync", "2026-03-30 10:00", "team sync"),
    (LON, "remind me to take pills every day at 8", "2026-03-28 08:00", "take pills"),
    (LON, "remind me to x every day at 6pm", "2026-03-27 18:00", "x"),
    (LON, "remind me to x daily at 7:30", "2026-03-28 07:30", "x"),
    (LON, "remind me every mon and wed at 6pm to go to the gym", "2026-03-30 18:00", "go to the gym"),
    (LON, "remind me to x every friday at 5pm", "2026-03-27 17:00", "x"),
    (LON, "remind me to water the plants every weekend at 10am", "2026-03-28 10:00", "water the plants"),
    (LON, "remind me every month on the 1st at 9am to pay rent", "2026-04-01 09:00", "pay rent"),
    (LON, "remind me to x every morning", "2026-03-28 09:00", "x"),
    (LON, "remind me to x every week on tuesday at 11", "2026-03-31 11:00", "x"),
    (LON, "remind me to x weekdays at 8:45", "2026-03-30 08:45", "x"),
    (LON, "remind me to x every Monday", "?time_missing", "x"),
    # other zones
    (NYC, "remind me to x in 10 mins", "2026-03-27 14:40", "x"),
    (NYC, "remind me to x tomorrow at 9", "2026-03-28 09:00", "x"),
    (NYC, "remind me to x at 9", "?time_ambiguous", "x"),
    (NYC, "remind me every weekday at 9 to x", "2026-03-30 09:00", "x"),
    (NBO, "remind me to x tonight at 9", "2026-03-27 21:00", "x"),
    (NBO, "remind me to x at 6", "2026-03-27 18:00", "x"),
    (NBO, "remind me to x next friday at 7am", "2026-04-03 07:00", "x"),
    (TYO, "remind me to x at 11am", "?time_past", "x"),
    (TYO, "remind me to x in 3 days at 8am", "2026-03-30 08:00", "x"),
    (SYD, "remind me to x in 10 days", "2026-04-06 14:30", "x"),
    (SYD, "remind me to x on 5 April at 9am", "2026-04-05 09:00", "x"),
]


def test_the_table_is_large_and_has_questions() -> None:
    assert len(TABLE) >= 80
    assert sum(1 for row in TABLE if row[2].startswith("?")) >= 15


@pytest.mark.parametrize(("tz", "request_text", "expected", "text"), TABLE, ids=[f"{r[0]}:{r[1]}" for r in TABLE])
def test_phrasing(tz: str, request_text: str, expected: str, text: str | None) -> None:
    result = parse_request(request_text, now=_now(tz), tz=tz)
    if expected.startswith("?"):
        assert isinstance(result, Clarify), result
        assert result.code == expected[1:], result
        assert result.question.endswith(("?", "."))
        assert len(result.question) > 10
        for option in result.options:  # every option offered is a real time ahead
            assert option.due > _now(tz)
    else:
        assert isinstance(result, Parsed), result
        local = result.due.astimezone(ZoneInfo(tz))
        assert local.strftime("%Y-%m-%d %H:%M") == expected
        assert result.due > _now(tz)
    if text is not None:
        assert result.text == text


def test_utc_is_right_on_both_sides_of_the_change() -> None:
    before = parse_request("remind me to x tomorrow at 9", now=_now(LON), tz=LON)
    after = parse_request("remind me to x monday at 10am", now=_now(LON), tz=LON)
    assert isinstance(before, Parsed)
    assert isinstance(after, Parsed)
    assert before.due.astimezone(UTC) == datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # GMT
    assert after.due.astimezone(UTC) == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # 10:00 BST
    ny = parse_request("remind me to x tomorrow at 9", now=_now(NYC), tz=NYC)
    assert isinstance(ny, Parsed)
    assert ny.due.astimezone(UTC) == datetime(2026, 3, 28, 13, 0, tzinfo=UTC)


def test_an_ambiguous_hour_offers_both_readings_soonest_first() -> None:
    result = parse_request("remind me to x at 9", now=_now(LON), tz=LON)
    assert isinstance(result, Clarify)
    assert result.question == "Did you mean today at 21:00 or tomorrow at 09:00?"
    assert [o.due.strftime("%d %H:%M") for o in result.options] == ["27 21:00", "28 09:00"]


def test_a_time_already_past_offers_tomorrow_and_never_picks_it_silently() -> None:
    result = parse_request("remind me to x at 2pm", now=_now(LON), tz=LON)
    assert isinstance(result, Clarify)
    assert "already passed" in result.question
    assert [o.label for o in result.options] == ["tomorrow at 14:00"]


def test_recurrence_rules_are_rfc5545() -> None:
    result = parse_request("remind me every mon and wed at 6pm to go", now=_now(LON), tz=LON)
    assert isinstance(result, Parsed)
    assert result.rrule == "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=18;BYMINUTE=0;BYSECOND=0"
    assert result.recurrence == "every Monday and Wednesday at 18:00"


def test_next_occurrence_keeps_the_local_time_when_sydney_leaves_summer_time() -> None:
    rule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0"
    saturday = datetime(2026, 4, 4, 9, 0, tzinfo=ZoneInfo(SYD))  # AEDT, UTC+11
    sunday = next_occurrence(rrule=rule, after=saturday, tz=SYD)
    assert sunday == datetime(2026, 4, 4, 23, 0, tzinfo=UTC)  # 09:00 AEST, UTC+10
    assert sunday is not None
    assert sunday.astimezone(ZoneInfo(SYD)).hour == 9


def test_the_confirmation_states_the_exact_local_date_and_time() -> None:
    result = parse_request("remind me to x tomorrow at 9", now=_now(LON), tz=LON)
    assert isinstance(result, Parsed)
    assert format_local(result.due, LON) == "Saturday 28 March 2026 at 09:00 (Europe/London)"
