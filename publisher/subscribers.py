"""Subscribers in and out: address and name rules, CSV import and export.

This module decides what a valid subscriber is (``normalize_email``,
``clean_name``), reads a CSV file into rows and rejections (pure: bytes in,
no I/O), applies rows to a state store passed in, and writes the CSV that
``export`` prints. The store keeps the records and the status rules (see
``StateStore.add_subscriber``); the command line only wires them together.

    parsed = read_subscriber_csv(data, "people.csv", known_lists=("daily",), default_lists=("daily",))
    for rejection in parsed.rejected:
        print(rejection)                    # people.csv:7: no email address
    report = import_subscribers(store, parsed.rows, source="import:people.csv", now=now)

The CSV has a header row naming its columns, in any order and case:
``email`` (required), ``name``, ``lists`` (names separated by spaces or
semicolons; empty or absent means the default lists), and the two that ``export``
adds, ``status`` and ``created``, so an export imports back as it was.
Other columns are ignored; "Email Address" and "E-mail" name the email
column too. Blank rows are skipped. A file whose header has no ``email`` but splits
on ``;`` into one that does (a spreadsheet in a comma-decimal locale) is
read with ``;`` as the delimiter.

Addresses: the domain is lower-cased and IDNA-encoded (``bücher.example``
becomes ``xn--bcher-kva.example``); the local part is kept as written, so
``Someone@example.com`` and ``someone@example.com`` are two subscribers, as
RFC 5321 says they are two mailboxes. Addresses that need SMTPUTF8 (a
non-ASCII local part) are refused: not every server on the way accepts them.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError, validate_email

from publisher.errors import PublisherError
from publisher.model import Subscriber

if TYPE_CHECKING:
    from publisher.store import StateStore

log = logging.getLogger(__name__)

STATUSES = ("active", "pending", "unsubscribed", "bounced", "complained")
# An address in one of these states is never mailed, and an import never
# makes it active again.
SUPPRESSED = ("unsubscribed", "bounced", "complained")
EXPORT_COLUMNS = ("email", "name", "lists", "status", "created")
NAME_MAX = 200
_LIST_SEPARATORS = re.compile(r"[\s;,]+")


class SubscriberError(PublisherError):
    """An address, a name or a subscriber file that cannot be used."""


class SubscriberFileError(SubscriberError):
    """The file as a whole cannot be read (not UTF-8, no email column):
    nothing is imported."""


def normalize_email(text: str) -> str:
    """The address as stored: the local part as written, the domain in
    lower-case ASCII (IDNA). Raises ``SubscriberError`` with the reason.

    >>> normalize_email("Someone@EXAMPLE.COM")
    'Someone@example.com'
    >>> normalize_email("user@bücher.example")
    'user@xn--bcher-kva.example'
    """
    address = text.strip()
    if not address:
        raise SubscriberError("no email address")
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid address {address!r}: {exc}") from exc
    if valid.smtputf8:
        raise SubscriberError(
            f"invalid address {address!r}: the part before the @ has non-ASCII characters, "
            "which needs SMTPUTF8 that not every mail server supports"
        )
    if valid.ascii_email:
        return valid.ascii_email
    return f"{valid.local_part}@{valid.ascii_domain}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_name(text: str) -> str:
    """A display name on one line: control characters (and so CR/LF) become
    spaces, runs of whitespace one space, at most ``NAME_MAX`` characters."""
    flat = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", text)).split())
    if len(flat) > NAME_MAX:
        flat = flat[:NAME_MAX].rstrip()
    return flat


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


@dataclass(frozen=True)
class ImportReport:
    """What an import did: ``added`` new addresses, ``updated`` existing ones
    that changed (a list added, a name filled in, a status recorded),
    ``unchanged`` ones already there as the file says, and among those
    ``not_resubscribed``: addresses that left (or bounced) and stay so.
    ``duplicates`` counts rows repeating an address of an earlier row (their
    lists are added; they are in none of the other counts)."""

    added: int
    updated: int
    unchanged: int
    not_resubscribed: int
    duplicates: int


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


# Header names other tools write for the same columns.
_COLUMN_ALIASES = {"email address": "email", "e-mail": "email", "e-mail address": "email"}


def _header(text: str, shown: str) -> tuple[str, int, list[str]]:
    """The delimiter, the header's line and its column names (lower-case)."""
    for delimiter in (",", ";"):
        for line, record in _records(text, delimiter):
            if _blank(record):
                continue
            if isinstance(record, str):
                break
            columns = [_COLUMN_ALIASES.get(c, c) for c in (cell.strip().lower() for cell in record)]
            if "email" in columns:
                return delimiter, line, columns
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


def read_subscriber_csv(
    data: bytes, shown: str, *, known_lists: Sequence[str], default_lists: Sequence[str]
) -> ParsedFile:
    """Parse a subscriber file into good rows and ``path:line: reason`` rejections.

    ``default_lists`` are the lists of a row whose ``lists`` cell is empty or
    absent. Raises ``SubscriberFileError`` when the file is not UTF-8 or has
    no ``email`` column.
    """
    text = _decode(data, shown)
    delimiter, header_line, columns = _header(text, shown)
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise SubscriberFileError(f"{shown}:{header_line}: column {repeated[0]!r} appears more than once")
    index = {name: i for i, name in enumerate(columns) if name}
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
            return record[i] if i is not None and i < len(record) else ""

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
            status = cell("status").strip().lower() or "active"
            if status not in STATUSES:
                raise SubscriberError(f"status {status!r} is not one of {', '.join(STATUSES)}")
            created = _created(cell("created"))
        except SubscriberError as exc:
            rejected.append(Rejection(shown, line, str(exc)))
            continue
        rows.append(ImportRow(line, email, clean_name(cell("name")), lists, status, created))
    return ParsedFile(tuple(rows), tuple(rejected))


def import_subscribers(store: StateStore, rows: Sequence[ImportRow], *, source: str, now: datetime) -> ImportReport:
    """Apply ``rows`` to ``store`` in one transaction.

    An import adds addresses and adds lists to existing ones; it never makes
    an unsubscribed, bounced or complained address active again, never
    re-adds a list someone left, and never overwrites a name. Importing the
    same rows twice changes nothing the second time.
    """
    added = updated = unchanged = not_resubscribed = duplicates = 0
    seen: set[str] = set()
    with store.transaction():
        for row in rows:
            before = store.subscriber(row.email)
            after, created = store.add_subscriber(
                row.email, row.name, row.lists, source=source, now=now, status=row.status, created=row.created
            )
            if row.email in seen:
                # A second row for the same address adds its lists, and is
                # counted on its own.
                duplicates += 1
            elif created:
                added += 1
            elif after != before:
                updated += 1
                log.debug("import %s: subscriber %s changed (line %d)", source, after.id, row.line)
            else:
                unchanged += 1
                if row.status not in SUPPRESSED and after.status in SUPPRESSED:
                    not_resubscribed += 1
            seen.add(row.email)
    log.info(
        "import %s: %d added, %d updated, %d unchanged (%d not resubscribed), %d duplicate rows",
        source, added, updated, unchanged, not_resubscribed, duplicates,
    )
    return ImportReport(added, updated, unchanged, not_resubscribed, duplicates)


def subscriber_record(subscriber: Subscriber) -> dict[str, object]:
    """A subscriber as JSON-ready values (times in UTC ISO 8601)."""
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "lists": list(subscriber.lists),
        "status": subscriber.status,
        "source": subscriber.source,
        "created": subscriber.created.astimezone(timezone.utc).isoformat(),
        "changed": subscriber.changed.astimezone(timezone.utc).isoformat(),
    }


def export_csv(subscribers: Iterable[Subscriber]) -> str:
    """The subscribers as CSV with the header ``email,name,lists,status,created``;
    ``read_subscriber_csv`` reads it back to the same subscribers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for s in subscribers:
        writer.writerow(
            (s.email, s.name, " ".join(s.lists), s.status, s.created.astimezone(timezone.utc).isoformat())
        )
    return out.getvalue()
