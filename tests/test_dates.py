"""format_day and check_language: dates for readers, in the site's language and time zone."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from publisher.dates import check_language, format_day

# 22:30 UTC on 2 May is already 3 May in Paris and still 2 May in New York.
LATE = datetime(2024, 5, 2, 22, 30, tzinfo=timezone.utc)
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "3 May 2024"),
        ("en-US", "3 May 2024"),
        ("fr", "3 mai 2024"),
        ("fr-CA", "3 mai 2024"),
        ("de", "3. Mai 2024"),
        ("de-AT", "3. Mai 2024"),
        ("pt-BR", "3 de maio de 2024"),
        ("pt_BR", "3 de maio de 2024"),
        ("es", "3 de mayo de 2024"),
        ("ru", "3 мая 2024\u202fг."),
        ("ja", "2024年5月3日"),
        ("FR", "3 mai 2024"),
    ],
)
def test_the_day_in_the_language(language: str, expected: str) -> None:
    assert format_day(LATE, PARIS, language) == expected


def test_the_day_is_the_one_in_the_time_zone() -> None:
    assert format_day(LATE, ZoneInfo("America/New_York"), "fr") == "2 mai 2024"
    assert format_day(LATE, timezone.utc, "de") == "2. Mai 2024"


def test_every_english_month_is_as_before() -> None:
    months = "January February March April May June July August September October November December".split()
    for number, month in enumerate(months, 1):
        assert format_day(datetime(2025, number, 9, 12, tzinfo=timezone.utc), timezone.utc, "en") == f"9 {month} 2025"


@pytest.mark.parametrize("language", ["xq", "zz-ZZ", "en-GB-oed", "", "i-klingon"])
def test_an_unknown_language_falls_back_to_english(language: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="publisher.dates"):
        assert format_day(LATE, PARIS, language) == "3 May 2024"
    assert f"language {language!r}:" in caplog.text and "dates are shown in English" in caplog.text


@pytest.mark.parametrize("language", ["en", "fr", "pt-BR", "zh-Hant-TW", "es-419", "de-DE-1996"])
def test_check_language_accepts_what_babel_knows(language: str) -> None:
    check_language(language)


@pytest.mark.parametrize(
    ("language", "reason"),
    [("xq", "unknown locale 'xq'"), ("en-GB-oed", "not a valid locale identifier"), ("", "Empty locale identifier")],
)
def test_check_language_says_why(language: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        check_language(language)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("language", ["en", "en-US", "en-GB", "en-AU", "en-IN", "en-001"])
def test_english_dates_are_what_babel_writes_with_the_english_pattern(language: str) -> None:
    from babel import Locale
    from babel.dates import format_date

    locale = Locale.parse(language, sep="-")
    for day in (date(2024, 5, 3), date(1999, 12, 31), date(2025, 1, 1), date(5, 2, 9)):
        moment = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
        assert format_day(moment, timezone.utc, language) == format_date(day, "d MMMM y", locale=locale)
