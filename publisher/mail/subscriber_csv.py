"""Subscriber files: reading a CSV file (ours and other tools') into rows
and rejections, pure (bytes in, no I/O), and writing the CSV that
``export`` prints. ``publisher.mail.subscribers.import_subscribers``
applies the rows.

    parsed = read_subscriber_csv(data, "people.csv", known_lists=("daily",), default_lists=("daily",))
    for rejection in parsed.rejected:
        print(rejection)                    # people.csv:7: no email address

The CSV has a header row naming its columns, in any order; names match
whatever their case, surrounding spaces and underscores (``First_Name`` is
``first name``). ``email`` is required ("Email Address", "E-mail" and
"email_address" name it too); ``name`` (or, when it is absent or empty,
``first name`` and ``last name`` joined: "First Last"); ``lists`` (names
separated by spaces or semicolons; empty or absent means the default lists);
and the two that ``export`` adds, ``status`` and ``created``, so an export
imports back as it was. Other columns are ignored. Blank rows are skipped. A
file whose header has no ``email`` but splits on ``;`` into one that does (a
spreadsheet in a comma-decimal locale) is read with ``;`` as the delimiter.

Other tools' exports read as their owners expect:

- Mailchimp's audience export ("Email Address","First Name","Last Name",...)
  comes as separate files for subscribed, unsubscribed and cleaned members:
  a row with an ``UNSUB_TIME`` is unsubscribed, one with a ``CLEAN_TIME``
  bounced (Mailchimp cleans an address after hard bounces).
- Substack's subscriber export (email,active_subscription,expiry,plan,
  email_disabled,created_at,...): ``email_disabled`` true is unsubscribed.
  ``active_subscription`` is about the paid plan, not about email, and is
  ignored.
- Buttondown's export (``subscriber_type``, or ``type`` in newer ones) and
  listmonk's (uuid,email,name,attributes,status,...): their words are read
  as ours (``unactivated`` is pending; ``unsubscribed``, ``removed``,
  ``spammy``, listmonk's ``disabled`` and ``blocklisted`` are unsubscribed;
  ``cleaned``, ``undeliverable`` bounced; see ``_STATUS_WORDS``). A word not
  known is a rejected row, never an active subscriber.
- Elsewhere: Ghost's ``subscribed_to_emails`` false, an ``opt_out`` true or
  an ``unsubscription_date`` with a value are unsubscribed too.

When several columns speak, the strictest wins (complained, then bounced,
unsubscribed, pending, active). A row marked not to be mailed is imported
with that status rather than skipped, because the opt-out has to travel with
the list: see ``read_subscriber_csv``.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return as a formula, and names come from a public form. ``export``
writes such a cell with a ``'`` in front (OWASP's advice for CSV injection),
and an import takes exactly that ``'`` off again, so the round trip is exact:
it strips one ``'`` only where the rest starts with one of those characters
(or with more quotes and then one, which ``export`` writes for a value that
itself starts with ``'=``), and ``O'Brien`` or ``'tis`` come through as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from publisher.mail.subscribers import SubscriberError, SubscriberFileError, clean_name, normalize_email
from publisher.model import SUBSCRIBER_STATUSES, Subscriber

EXPORT_COLUMNS = ("email", "name", "lists", "status", "created")
_LIST_SEPARATORS = re.compile(r"[\s;,]+")


def split_lists(text: str) -> tuple[str, ...]:
    """List names from a cell: separated by spaces or semicolons (commas too),
    in the order given, each once."""
    names = [name for name in _LIST_SEPARATORS.split(text.strip()) if name]
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ImportRow:
    """One good row of a subscriber file, ready for the store."""

    line: int
    email: str
    name: str
    lists: tuple[str, ...]
    status: str
    created: datetime | None


@dataclass(frozen=True)
class Rejection:
    """A row that cannot be imported: ``path:line: reason``."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class ParsedFile:
    rows: tuple[ImportRow, ...]
    rejected: tuple[Rejection, ...]


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SubscriberFileError(
            f"{shown}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save the file as CSV UTF-8 and import it again"
        ) from None


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | str]]:
    """Each CSV record with the physical line it starts on. A record the csv
    module refuses (a field longer than its limit) is the reason, as a str;
    reading goes on with the next line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    while True:
        try:
            record: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            record = f"cannot be read as CSV: {exc}"
        yield start, record
        start = reader.line_num + 1


def _blank(record: list[str] | str) -> bool:
    return not isinstance(record, str) and not any(cell.strip() for cell in record)


def _column_key(text: str) -> str:
    """A header cell as compared: lower-case, trimmed, with runs of spaces and
    underscores as one space ("First_Name" and " first  name " are one)."""
    return " ".join(text.replace("_", " ").lower().split())


# Header names (as ``_column_key`` makes them) that other tools write for
# the columns we read.
_COLUMN_ALIASES = {
    "email address": "email",
    "e-mail": "email",
    "e-mail address": "email",
    "full name": "name",
    "firstname": "first name",
    "fname": "first name",
    "given name": "first name",
    "lastname": "last name",
    "lname": "last name",
    "surname": "last name",
    "family name": "last name",
}

# Columns whose value is a status word (``_STATUS_WORDS``): ours and listmonk's
# ``status``, Buttondown's ``subscriber_type`` or ``type``, and the status
# column a combined export or a hand-made spreadsheet may carry.
_STATUS_COLUMNS = (
    "status",
    "subscriber type",
    "type",
    "member status",
    "subscriber status",
    "subscription status",
    "email marketing status",
)
# Columns that mark a row suppressed when they hold anything (a date):
# Mailchimp's unsubscribed and cleaned member files, and the
# ``unsubscription_date`` other mailing tools keep.
_STAMP_COLUMNS = {"unsub time": "unsubscribed", "clean time": "bounced", "unsubscription date": "unsubscribed"}
# True/false columns and the value that means "do not mail": Substack's
# ``email_disabled``, Ghost's ``subscribed_to_emails``, an ``opt_out``.
_FLAG_COLUMNS = {"email disabled": True, "subscribed to emails": False, "opt out": True}
_TRUE = ("true", "yes", "y", "t", "1")
_FALSE = ("false", "no", "n", "f", "0")

# Other tools' words for our statuses (compared as ``_column_key`` makes them).
_STATUS_WORDS = {
    **{status: status for status in SUBSCRIBER_STATUSES},
    # Mailchimp
    "subscribed": "active",
    "cleaned": "bounced",
    "transactional": "unsubscribed",  # never opted in to marketing
    "nonsubscribed": "unsubscribed",
    "archived": "unsubscribed",
    # Buttondown: every paid state still receives email
    "regular": "active",
    "premium": "active",
    "trialed": "active",
    "gifted": "active",
    "churning": "active",
    "paused": "active",
    "past due": "active",
    "unpaid": "active",
    "unactivated": "pending",
    "removed": "unsubscribed",
    "spammy": "unsubscribed",
    "undeliverable": "bounced",
    # listmonk
    "enabled": "active",
    "disabled": "unsubscribed",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",
    "unconfirmed": "pending",
    "confirmed": "active",
    # Substack plans, when a file carries them as a type
    "free": "active",
    "paid": "active",
    "comp": "active",
    "gift": "active",
    "founding": "active",
}

_READ_COLUMNS = frozenset(
    {"email", "name", "first name", "last name", "lists", "created", *_STATUS_COLUMNS, *_STAMP_COLUMNS, *_FLAG_COLUMNS}
)


def _header(text: str, shown: str) -> tuple[str, int, list[str], list[str]]:
    """The delimiter, the header's line, its column names (as compared, aliases
    resolved) and the same names as written."""
    for delimiter in (",", ";"):
        for line, record in _records(text, delimiter):
            if _blank(record):
                continue
            if isinstance(record, str):
                break
            columns = [_COLUMN_ALIASES.get(key, key) for key in map(_column_key, record)]
            if "email" in columns:
                return delimiter, line, columns, [cell.strip() for cell in record]
            break
    for line, record in _records(text, ","):
        if isinstance(record, str):
            raise SubscriberFileError(f"{shown}:{line}: {record}")
        if not _blank(record):
            found = ", ".join(cell.strip() for cell in record)
            raise SubscriberFileError(
                f"{shown}:{line}: no email column: the first row must be a header such as "
                f"email,name,lists (found: {found})"
            )
    raise SubscriberFileError(f"{shown}: empty; expected a header row such as email,name,lists")


def _created(text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SubscriberError(f"created {text.strip()!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


# A cell a spreadsheet would run as a formula, after any quotes we put in
# front (so that a value starting with quotes round-trips too).
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED_FORMULA = re.compile(r"'+[=+\-@\t\r]")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a value starting
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or with
    quotes and then one of those) gets a ``'`` in front.

    >>> spreadsheet_safe("=1+2"), spreadsheet_safe("O'Brien")
    ("'=1+2", "O'Brien")
    """
    return "'" + value if _FORMULA.match(value) else value


def from_spreadsheet_cell(value: str) -> str:
    """The value ``spreadsheet_safe`` was given: the one ``'`` it adds is taken
    off, and nothing else (``'O'Brien`` stays as it is).

    >>> from_spreadsheet_cell("'=1+2"), from_spreadsheet_cell("''=1+2"), from_spreadsheet_cell("'O'Brien")
    ('=1+2', "'=1+2", "'O'Brien")
    """
    return value[1:] if _ESCAPED_FORMULA.match(value) else value


def _status_word(header: str, text: str) -> str:
    status = _STATUS_WORDS.get(_column_key(text))
    if status is None:
        raise SubscriberError(f"{header} {text.strip()!r} is not one of {', '.join(SUBSCRIBER_STATUSES)}")
    return status


def _flag(header: str, text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise SubscriberError(f"{header} {text.strip()!r} is neither true nor false")


def read_subscriber_csv(
    data: bytes, shown: str, *, known_lists: Sequence[str], default_lists: Sequence[str]
) -> ParsedFile:
    """Parse a subscriber file into good rows and ``path:line: reason`` rejections.

    ``default_lists`` are the lists of a row whose ``lists`` cell is empty or
    absent. Raises ``SubscriberFileError`` when the file is not UTF-8 or has
    no ``email`` column, or when a column we read appears twice (a column we
    ignore may: some Mailchimp exports repeat theirs).

    A row the source marks unsubscribed, disabled, cleaned, bounced or
    blocklisted is a row with that status, not a skipped row. A careful list
    owner moving a list wants the opt-outs to come along: recorded here, the
    address is never mailed, an import never makes it active again (not even
    a later import of an older file that still has it subscribed), an
    address already here as active stops being mailed, and the owner still
    sees it in ``list --status`` and ``export``. A skipped row would leave
    all of that to chance. An unsubscribed row leaves every list here, even
    where the source kept opt-outs per list (Mailchimp, per audience): the
    safer reading of a file that does not say which of our lists it means.
    """
    text = _decode(data, shown)
    delimiter, header_line, columns, written = _header(text, shown)
    repeated = sorted({c for c in columns if c in _READ_COLUMNS and columns.count(c) > 1})
    if repeated:
        raise SubscriberFileError(f"{shown}:{header_line}: column {repeated[0]!r} appears more than once")
    index = {name: i for i, name in enumerate(columns) if name in _READ_COLUMNS}
    statuses = [(column, written[i]) for column, i in index.items() if column in _STATUS_COLUMNS]
    stamps = [(column, _STAMP_COLUMNS[column]) for column in index if column in _STAMP_COLUMNS]
    flags = [(column, written[i], _FLAG_COLUMNS[column]) for column, i in index.items() if column in _FLAG_COLUMNS]
    known = ", ".join(known_lists) or "none configured"
    rows: list[ImportRow] = []
    rejected: list[Rejection] = []
    for line, record in _records(text, delimiter):
        if line <= header_line or _blank(record):
            continue
        if isinstance(record, str):
            rejected.append(Rejection(shown, line, record))
            continue

        def cell(column: str) -> str:
            i = index.get(column)
            return from_spreadsheet_cell(record[i]) if i is not None and i < len(record) else ""

        try:
            if any(value.strip() for value in record[len(columns) :]):
                raise SubscriberError(
                    f"{len(record)} fields but the header has {len(columns)} "
                    "(a name with a comma in it needs double quotes)"
                )
            email = normalize_email(cell("email"))
            lists = split_lists(cell("lists")) or tuple(default_lists)
            unknown = [name for name in lists if name not in known_lists]
            if unknown:
                raise SubscriberError(f"unknown list {unknown[0]!r} (lists: {known})")
            # Every column that says something about the address is heard,
            # and the strictest wins: SUBSCRIBER_STATUSES runs from active to complained.
            said = [_status_word(header, cell(column)) for column, header in statuses if cell(column).strip()]
            said += [status for column, status in stamps if cell(column).strip()]
            said += [
                "unsubscribed" for column, header, off in flags if cell(column).strip() and _flag(header, cell(column)) is off
            ]
            status = max(said, key=SUBSCRIBER_STATUSES.index, default="active")
            created = _created(cell("created"))
        except SubscriberError as exc:
            rejected.append(Rejection(shown, line, str(exc)))
            continue
        name = clean_name(cell("name")) or clean_name(f"{cell('first name')} {cell('last name')}")
        rows.append(ImportRow(line, email, name, lists, status, created))
    return ParsedFile(tuple(rows), tuple(rejected))


def export_csv(subscribers: Iterable[Subscriber]) -> str:
    """The subscribers as CSV with the header ``email,name,lists,status,created``;
    ``read_subscriber_csv`` reads it back to the same subscribers.

    Every cell goes through ``spreadsheet_safe``: a name such as
    ``=HYPERLINK(...)``, typed into a public form, opens as text in a
    spreadsheet instead of running.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for s in subscribers:
        cells = (s.email, s.name, " ".join(s.lists), s.status, s.created.astimezone(timezone.utc).isoformat())
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return out.getvalue()
