"""Dates for people to read, in the site's language and time zone.

Babel lives here and nowhere else. Every date a reader sees (the email
digest, the web pages) goes through ``format_day``; templates reach it
through their ``local_date`` filter or function.

    format_day(datetime(2024, 5, 3, 9, tzinfo=UTC), ZoneInfo("Europe/Paris"), "fr")   # '3 mai 2024'
    format_day(datetime(2024, 5, 3, 9, tzinfo=UTC), ZoneInfo("Europe/Berlin"), "de")  # '3. Mai 2024'
    check_language("xx")   # ValueError: unknown locale 'xx'

English keeps the "3 May 2024" every site has shown so far, whatever its
region (``en-US`` too); every other language gets its own long date from
CLDR ("3 de maio de 2024" for ``pt-BR``, "3 мая 2024 г." for ``ru``). A tag
Babel cannot use falls back to English, with one warning per tag: the config
rejects such a tag (``check_language``), so this happens only to a
``SiteInfo`` made some other way.

Babel is imported inside the functions, not at the top: ``babel.dates``
takes about 25 ms to import and load its data, which commands that show no
date should not pay.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel import Locale

log = logging.getLogger(__name__)

#: The language used when the site's cannot be.
FALLBACK_LANGUAGE = "en"

# The day-month-year order English dates have always had here (CLDR's long
# English date is "May 3, 2024").
_ENGLISH_PATTERN = "d MMMM y"
_ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def check_language(tag: str) -> None:
    """Raise ``ValueError`` (Babel's reason) unless Babel has dates for ``tag``.

    Tags are BCP 47 (``pt-BR``, ``zh-Hant-TW``); ``_`` is taken for ``-``.
    """
    _parse(tag)


def format_day(moment: datetime, tz: tzinfo, language: str) -> str:
    """The day of ``moment`` in ``tz``, as ``language`` writes it: "3 May 2024", "3 mai 2024"."""
    day = moment.astimezone(tz).date()
    locale = _locale(language)
    if locale.language == "en":
        # What format_date(day, _ENGLISH_PATTERN, locale) gives, without
        # loading the locale's calendar data (30 ms, once a process).
        return f"{day.day} {_ENGLISH_MONTHS[day.month - 1]} {day.year}"
    from babel.dates import format_date

    return format_date(day, "long", locale=locale)


def _parse(tag: str) -> Locale:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(tag.strip().replace("_", "-"), sep="-")
    except UnknownLocaleError as exc:
        raise ValueError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        # Babel's message for an empty tag runs to several lines about locale
        # environment variables; the first says it all.
        raise ValueError(str(exc).strip().split("\n", 1)[0]) from None


@functools.lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    """``language`` as a Babel locale, or English (warned once per tag)."""
    try:
        return _parse(language)
    except ValueError as exc:
        log.warning("language %r: %s; dates are shown in English", language, exc)
        return _parse(FALLBACK_LANGUAGE)
