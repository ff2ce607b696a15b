"""The email message: one recipient's digest as standards-compliant MIME bytes.

``MessageFactory`` prepares what every recipient of an issue shares once,
then ``build`` gives one recipient's message; ``build_message`` is the same
for a single message. Either turns a subject, HTML and text into the bytes
an MTA accepts: ``multipart/alternative`` (text/plain first, text/html
second, both UTF-8, quoted-printable so no line passes 998 octets however
long premailer's lines are), CRLF line endings, and the headers Gmail and
Yahoo ask of bulk senders since 2024 (List-Id, List-Unsubscribe with
RFC 8058 one-click). ``dkim_sign`` optionally signs the result with dkimpy.

    data = build_message(
        subject, html, text,
        sender="War in Context <news@example.org>",
        to=personal, reply_to=None,
        list_id=list_id("daily", "Daily digest", "example.org"),
        unsubscribe_url=personal.unsubscribe_url, unsubscribe_mailto=None,
        message_id=make_message_id("example.org", "daily", "7", personal.email),
        date=now,
    )
    data = dkim_sign(data, domain="example.org", selector="mail", private_key=pem)

    factory = MessageFactory(
        subject, html_with_slots, text_with_slots, slots=PLACEHOLDER,   # render.PLACEHOLDER
        sender=..., reply_to=None, list_id=..., unsubscribe_mailto=None,
    )
    data = factory.build(
        to=personal, unsubscribe_url=personal.unsubscribe_url, message_id=..., date=now,
        html_values={"%%PUB:name%%": "Ann"}, text_values={"%%PUB:name%%": "Ann"},
    )

A factory costs about what one ``build_message`` does; each ``build`` then
folds only To, Message-ID and List-Unsubscribe, and quoted-printable-encodes
only the body lines that hold a slot: quoted-printable is line-local (a
line's encoding depends on that line alone), so every other line is encoded
once. The bytes are exactly those of ``build_message_reference``, the
``email.message.EmailMessage`` builder kept as the specification (tests
compare the two over many recipients).

Every text that reaches a header, whether from a post, a subscriber or the
config, goes through ``header_text`` first: control characters (CR and LF
among them) become spaces, so no value can start a header of its own.

Building is pure: the same arguments give the same bytes (the MIME boundary
is derived from the Message-ID). Only the DKIM signature's ``t=`` reads the
clock.
"""

from __future__ import annotations

import email.errors
import email.policy
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from email import quoprimime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

import dkim

from publisher.errors import PublisherError
from publisher.model import Personal

# Headers folded here (see _set) are written as they are, never refolded;
# the few set as header objects (Date, Message-ID, Content-Type) are folded
# as usual. The email package wraps quoted-printable at the policy's line
# length, and RFC 2045 allows 76 columns, not SMTP's 78.
POLICY = email.policy.SMTP.clone(refold_source="none", max_line_length=76)

# RFC 5322: a line is at most 998 octets, and should be at most 78; one
# holding an RFC 2047 encoded-word at most 76. Lines are folded at 76.
MAX_LINE = 998
MAX_EW_LINE = 76
FOLD_AT = 76

DKIM_HEADERS = (
    b"from",
    b"to",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)

# Set by build_message itself (or meaningless to set per message): an extra
# header may not replace or duplicate any of them.
_RESERVED = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Sender", "Reply-To", "Subject", "Date", "Message-ID",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
        "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "DKIM-Signature",
        "Return-Path", "Received",
    )
)
# C0 controls (CR, LF, TAB, NUL, …), DEL, C1 controls (NEL among them) and
# the Unicode line and paragraph separators: everything str.splitlines()
# or a mail client might treat as a line break.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII but ':'
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATOM = re.compile(_ATEXT)
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_MSG_ID = re.compile(rf"<({_DOT_ATOM.pattern})@({_DOT_ATOM.pattern}|\[[!-Z^-~]*\])>")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_DKIM_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


class MessageError(PublisherError):
    """A message cannot be built or signed: a bad address, header or DKIM key."""


def header_text(value: str) -> str:
    """``value`` made safe for one header: runs of control characters become one space.

    CR and LF are among them, so the result can never end one header and
    begin another. Leading and trailing whitespace is dropped, as a mail
    parser would drop it anyway.
    """
    return _CONTROLS.sub(" ", value).strip()


def build_message(
    rendered_subject: str,
    html: str,
    text: str,
    *,
    sender: str,
    to: Personal,
    reply_to: str | None,
    list_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None,
    message_id: str,
    date: datetime,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """One recipient's message as CRLF-terminated bytes, ready for SMTP or an outbox.

    ``sender`` and ``reply_to`` are addresses as the config holds them
    (``Site <news@example.org>`` or a bare address); ``to`` gives the
    recipient's address and, when known, name; ``list_id`` is an RFC 2919
    value such as ``list_id()`` makes; ``unsubscribe_url`` is the one-click
    HTTPS URL (RFC 8058: a POST to it must unsubscribe without further
    questions); ``unsubscribe_mailto`` an address that unsubscribes whoever
    writes to it. ``date`` must be timezone-aware.

    The parts are in MIME's canonical form: their lines end in CRLF and the
    last line gets a line break if it had none; decoded, they are ``text``
    and ``html`` otherwise unchanged. Raises ``MessageError`` naming the
    field for an address, URL or header that cannot be used.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise MessageError(f"Date: needs a timezone-aware datetime (got {date!r})")
    message_id = _checked_message_id(message_id)
    factory = MessageFactory(
        rendered_subject,
        html,
        text,
        sender=sender,
        reply_to=reply_to,
        list_id=list_id,
        unsubscribe_mailto=unsubscribe_mailto,
        extra_headers=extra_headers,
    )
    return factory.build(to=to, unsubscribe_url=unsubscribe_url, message_id=message_id, date=date)


class MessageFactory:
    """The messages of one issue: what the recipients share is prepared once.

    ``html`` and ``text`` may hold slots, strings matched by the ``slots``
    pattern (the renderer's placeholders), where each recipient's values go;
    ``build`` takes those values already escaped for their part. The header
    values are checked here, once: a bad sender, list id or mailto raises
    ``MessageError`` now, a bad recipient address or URL in ``build``.

    A factory is not changed by ``build`` (its one cache holds immutable
    values), so worker threads may share one.
    """

    def __init__(
        self,
        rendered_subject: str,
        html: str,
        text: str,
        *,
        sender: str,
        reply_to: str | None,
        list_id: str,
        unsubscribe_mailto: str | None,
        extra_headers: dict[str, str] | None = None,
        slots: re.Pattern[str] | None = None,
    ):
        self._from = _header_line("From", _mailbox_value("From", _mailbox(sender, "From"))).encode("ascii")
        middle = []
        if reply_to:
            middle.append(_header_line("Reply-To", _mailbox_value("Reply-To", _mailbox(reply_to, "Reply-To"))))
        middle.append(_header_line("Subject", _text_value("Subject", header_text(rendered_subject))))
        self._after_to = "".join(middle).encode("ascii")
        self._list_id = _header_line("List-Id", _list_id_value(list_id)).encode("ascii")
        self._mailto = _unsubscribe_mailto_word(unsubscribe_mailto) if unsubscribe_mailto else None
        tail = ["List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"]
        for name, value in (extra_headers or {}).items():
            if not _FIELD_NAME.fullmatch(name) or name.lower() in _RESERVED:
                raise MessageError(f"{name!r}: cannot be added as an extra header (it is reserved or not a header name)")
            tail.append(_header_line(name, _text_value(name, header_text(value))))
        tail.append("MIME-Version: 1.0\r\n")
        self._before_boundary = "".join(tail).encode("ascii") + _MULTIPART[0]
        try:
            self._text = _BodyTemplate(text, slots, "text/plain")
            self._html = _BodyTemplate(html, slots, "text/html")
        except UnicodeError as exc:
            raise MessageError(f"the message body cannot be written: {exc}") from exc
        # The Date header of the last second seen: messages of one send
        # mostly share it, and folding a Date costs more than the rest.
        self._date: tuple[object, bytes] = (None, b"")

    @property
    def text_slots(self) -> frozenset[str]:
        """The slots the text part holds: the keys ``build`` needs in ``text_values``."""
        return self._text.slots

    @property
    def html_slots(self) -> frozenset[str]:
        """The slots the HTML part holds: the keys ``build`` needs in ``html_values``."""
        return self._html.slots

    def build(
        self,
        *,
        to: Personal,
        unsubscribe_url: str,
        message_id: str,
        date: datetime,
        html_values: Mapping[str, str] | None = None,
        text_values: Mapping[str, str] | None = None,
    ) -> bytes:
        """One recipient's message; ``message_id`` must be unique to it (the
        MIME boundary is derived from it), ``date`` timezone-aware."""
        if date.tzinfo is None or date.utcoffset() is None:
            raise MessageError(f"Date: needs a timezone-aware datetime (got {date!r})")
        message_id = _checked_message_id(message_id)
        to_line = _header_line("To", _to_value(to.name, to.email))
        words = [_unsubscribe_url_word(unsubscribe_url)]
        if self._mailto:
            words[0] += ","
            words.append(self._mailto)
        unsubscribe = _header_line("List-Unsubscribe", _words_value("List-Unsubscribe", words))
        boundary = ("=_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:32]).encode("ascii")
        delimiter = b"\r\n--" + boundary + b"\r\n"
        try:
            out = [
                self._from,
                to_line.encode("ascii"),
                self._after_to,
                self._date_line(date),
                _message_id_line(message_id),
                self._list_id,
                unsubscribe.encode("ascii"),
                self._before_boundary,
                boundary,
                _MULTIPART[1],
                b"--",
                boundary,
                b"\r\n",
                self._text.header,
            ]
            self._text.encode(text_values or {}, out)
            out += (delimiter, self._html.header)
            self._html.encode(html_values or {}, out)
            out += (b"\r\n--", boundary, b"--\r\n")
            return b"".join(out)
        except (ValueError, UnicodeError) as exc:
            raise MessageError(f"message {message_id} to {to.email!r} cannot be written: {exc}") from exc

    def _date_line(self, date: datetime) -> bytes:
        # The header shows the local time to the second and the offset: the key.
        key = (date.replace(microsecond=0), date.utcoffset())
        cached = self._date
        if cached[0] == key:
            return cached[1]
        line = _fold_header("Date", format_datetime(date))
        self._date = (key, line)  # one tuple: a thread never sees half of it
        return line


def _fold_header(name: str, value: str) -> bytes:
    """A header exactly as ``EmailMessage`` folds and writes it under ``POLICY``."""
    return POLICY.fold_binary(name, POLICY.header_store_parse(name, value)[1])


def _multipart_header() -> tuple[bytes, bytes]:
    """The multipart Content-Type header around its boundary (every boundary
    has the same length, so the same fold)."""
    sample = "=_" + "0" * 32
    folded = _fold_header("Content-Type", f'multipart/alternative; boundary="{sample}"')
    before, _, after = folded.partition(sample.encode("ascii"))
    return before, after + b"\r\n"


_MULTIPART = _multipart_header()


def _header_line(name: str, value: str) -> str:
    """``name: value`` as written (checked like ``_set``)."""
    line = f"{name}: {value}"
    if any(len(part) > MAX_LINE for part in line.split("\r\n")):
        raise MessageError(f"{name}: a value longer than {MAX_LINE} octets cannot be written on one line")
    return line + "\r\n"


def _checked_message_id(message_id: str) -> str:
    message_id = header_text(message_id)
    if not _MSG_ID.fullmatch(message_id):
        raise MessageError(f"Message-ID: must look like <unique@domain> (got {message_id!r})")
    return message_id


# A msg-id has no place to fold, so how the email package writes one depends
# on its length alone: on the header's line, or on a line of its own.
# Learnt per length from the package itself, then reused.
_MESSAGE_ID_SEPARATORS: dict[int, bytes] = {}


def _message_id_line(message_id: str) -> bytes:
    encoded = message_id.encode("ascii")
    separator = _MESSAGE_ID_SEPARATORS.get(len(encoded))
    if separator is not None:
        return b"Message-ID:" + separator + encoded + b"\r\n"
    line = _fold_header("Message-ID", message_id)
    prefix = line[: -len(encoded) - 2]
    if line.endswith(encoded + b"\r\n") and prefix in (b"Message-ID: ", b"Message-ID:\r\n "):
        _MESSAGE_ID_SEPARATORS[len(encoded)] = prefix[len(b"Message-ID:") :]
    return line


# An address the email package would take as it is: a dot-atom local part at
# an ASCII dot-atom domain. Anything else goes through ``_address``.
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM.pattern}@{_DOT_ATOM.pattern}", re.ASCII)


def _to_value(name: str, addr: str) -> str:
    name, addr = header_text(name), header_text(addr)
    if _PLAIN_ADDRESS.fullmatch(addr):
        return _phrase_value("To", name, f"<{addr}>")
    return _mailbox_value("To", _address(name, addr, "To"))


class _BodyTemplate:
    """One text part, quoted-printable encoded once but for the lines holding a slot.

    The part is cut into lines at its line breaks. Runs of lines without a
    slot are encoded now; a line with one is kept as literals and slots,
    filled and encoded per recipient. Each line is encoded with the line
    break that ends it, which is what makes the pieces add up to the whole:
    quoted-printable wraps within a line, and a line break is never
    rewritten across a cut (a CR just before a slot stays with the next
    line, in case the value starts with LF).
    """

    def __init__(self, body: str, slots: re.Pattern[str] | None, content_type: str):
        self.header = (
            _fold_header("Content-Type", f'{content_type}; charset="utf-8"')
            + _fold_header("Content-Transfer-Encoding", "quoted-printable")
            + b"\r\n"
        )
        # Runs of lines: (text, holds a slot, ends the part).
        runs: list[tuple[str, bool, bool]] = []
        for line, last in _raw_lines(body, slots):
            slotted = slots is not None and slots.search(line) is not None
            if runs and runs[-1][1] == slotted:
                runs[-1] = (runs[-1][0] + line, slotted, last)
            else:
                runs.append((line, slotted, last))
        chunks: list[bytes | _SlotLine] = []
        found: set[str] = set()
        for text, slotted, last in runs:
            if slotted:
                assert slots is not None
                chunk = _SlotLine(text, slots, last)
                found.update(chunk.tokens)
                chunks.append(chunk)
            else:
                chunks.append(_encode_lines(_terminated(_lines(text))))
        self.chunks = tuple(chunk for chunk in chunks if chunk)
        self.slots = frozenset(found)

    def encode(self, values: Mapping[str, str], out: list[bytes]) -> None:
        start = len(out)
        for chunk in self.chunks:
            if type(chunk) is bytes:
                out.append(chunk)
            else:
                encoded = chunk.encode(values)
                if encoded:
                    out.append(encoded)
        if len(out) == start:
            out.append(b"\r\n")  # an empty part is one empty line, as in the email package


class _SlotLine:
    """A line holding slots, with as much of its encoding as does not depend on them.

    Quoted-printable wraps a line from its start, 75 columns at a time, and
    each wrap looks only at the characters before it; so the wraps that fall
    well inside the text before the first slot are the same for everyone.
    Those are made here, and ``encode`` goes on from where they stop.
    """

    def __init__(self, line: str, slots: re.Pattern[str], last: bool):
        literals, self.tokens = _cut(line, slots)
        self.literals = literals[1:]
        self.last = last
        first = literals[0]
        if "\r" in first or "\n" in first:  # a CR kept before a slot: nothing to reuse
            self.head, self.tail, self.rest = b"", "", first
        else:
            translated = _qp_translate(first)
            pieces, start = _qp_wrap_prefix(translated)
            self.head = "".join(piece + "\r\n" for piece in pieces).encode("ascii")
            self.tail, self.rest = translated[start:], ""
        self.empty_start = not first

    def encode(self, values: Mapping[str, str]) -> bytes:
        parts = [self.rest]
        for token, literal in zip(self.tokens, self.literals):
            parts.append(values[token])
            parts.append(literal)
        text = _lines("".join(parts))
        if self.last and not text.endswith("\n"):
            if not text and self.empty_start:
                return b""
            text += "\n"
        pieces: list[str] = []
        lines = (self.tail + _qp_translate(text)).split("\n")
        for line in lines[:-1]:  # the text ends with a line break: the last is empty
            _qp_wrap(line, pieces.append)
        return self.head + "".join(piece + "\r\n" for piece in pieces).encode("ascii")


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _raw_lines(body: str, slots: re.Pattern[str] | None) -> list[tuple[str, bool]]:
    """``body`` cut after its line breaks, each piece with whether it is the last.

    No cut falls where ``_lines`` could join text across it once the slots
    are filled: not after a CR that a slot follows (a value may start with LF).
    """
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _LINE_BREAK.finditer(body):
        end = match.end()
        if match.group(0) == "\r" and slots is not None and slots.match(body, end):
            continue
        pieces.append((body[position:end], False))
        position = end
    if position < len(body):
        pieces.append((body[position:], False))
    if pieces:
        pieces[-1] = (pieces[-1][0], True)
    return pieces


def _terminated(text: str) -> str:
    """``text`` (after ``_lines``) with a final line break, as MIME's canonical form
    ends a part; empty stays empty."""
    return text if not text or text.endswith("\n") else text + "\n"


def _cut(line: str, slots: re.Pattern[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(literals, slots) of ``line``: the text around each slot, one more than the slots."""
    literals, tokens, position = [], [], 0
    for match in slots.finditer(line):
        literals.append(line[position : match.start()])
        tokens.append(match.group(0))
        position = match.end()
    literals.append(line[position:])
    return tuple(literals), tuple(tokens)


def _encode_lines(text: str) -> bytes:
    """Quoted-printable of whole lines, each ending in "\\n", as the email package
    encodes a body (76 columns), with CRLF line breaks."""
    data = text.encode("utf-8").decode("latin-1")
    return quoprimime.body_encode(data, MAX_EW_LINE, eol="\r\n").encode("ascii")


# Quoted-printable as ``email.quoprimime.body_encode`` writes it at 76
# columns, in pieces: ``_qp_translate`` escapes, ``_qp_wrap`` wraps one
# escaped line. The tests hold the pieces to ``body_encode`` itself.
_QP_SAFE = b" !\"#$%&'()*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\t\r\n"
_QP_ESCAPES = ["=%02X" % byte for byte in range(256)]
_QP_TABLE = {byte: chr(byte) if byte in _QP_SAFE else _QP_ESCAPES[byte] for byte in range(256)}
_QP_WIDTH = MAX_EW_LINE - 1  # the last column is for the soft break's "="


# Bytes to escape besides "=", which str.replace escapes faster than translate.
_QP_UNSAFE_BUT_EQUALS = re.compile(r"[^\t\n\r -<>-~]")


def _qp_translate(text: str) -> str:
    """``text`` as UTF-8 with every byte quoted-printable needs escaped (line breaks kept)."""
    data = text.encode("utf-8").decode("latin-1")
    if _QP_UNSAFE_BUT_EQUALS.search(data) is None:
        return data.replace("=", "=3D")
    return data.translate(_QP_TABLE)


def _qp_wrap_prefix(line: str) -> tuple[list[str], int]:
    """The wraps of an escaped line that any longer line starting with it shares,
    and where the next one starts."""
    pieces: list[str] = []
    start = 0
    while start <= len(line) - 1 - MAX_EW_LINE:
        start = _qp_step(line, start, pieces.append)
    return pieces, start


def _qp_step(line: str, start: int, append) -> int:
    stop = start + _QP_WIDTH
    # Never split an escape: "=XX" stays on one line.
    if line[stop - 2] == "=":
        append(line[start : stop - 1])
        return stop - 2
    if line[stop - 1] == "=":
        append(line[start:stop])
        return stop - 1
    append(line[start:stop] + "=")
    return stop


def _qp_wrap(line: str, append) -> None:
    """One escaped line (no line break) as ``body_encode`` wraps it: each piece
    appended is followed by CRLF when written."""
    start = 0
    laststart = len(line) - 1 - MAX_EW_LINE
    while start <= laststart:
        start = _qp_step(line, start, append)
    if line and line[-1] in " \t":
        # Whitespace at the end of a line is escaped, or protected by a soft break.
        room = start - laststart
        if room >= 3:
            tail = _QP_ESCAPES[ord(line[-1])]
        elif room == 2:
            tail = line[-1] + "=\r\n"
        else:
            tail = "=\r\n" + _QP_ESCAPES[ord(line[-1])]
        append(line[start:-1] + tail)
    else:
        append(line[start:])


def build_message_reference(
    rendered_subject: str,
    html: str,
    text: str,
    *,
    sender: str,
    to: Personal,
    reply_to: str | None,
    list_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None,
    message_id: str,
    date: datetime,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """What ``build_message`` gives, built with ``email.message.EmailMessage``.

    The specification the fast builder is held to: tests check that both
    give the same bytes, and the benchmarks use it as the naive pipeline.
    Several times slower; not used to send. The arguments, the result and
    the errors are ``build_message``'s.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise MessageError(f"Date: needs a timezone-aware datetime (got {date!r})")
    message_id = header_text(message_id)
    if not _MSG_ID.fullmatch(message_id):
        raise MessageError(f"Message-ID: must look like <unique@domain> (got {message_id!r})")

    msg = EmailMessage(policy=POLICY)
    _set(msg, "From", _mailbox_value("From", _mailbox(sender, "From")))
    _set(msg, "To", _mailbox_value("To", _address(to.name, to.email, "To")))
    if reply_to:
        _set(msg, "Reply-To", _mailbox_value("Reply-To", _mailbox(reply_to, "Reply-To")))
    _set(msg, "Subject", _text_value("Subject", header_text(rendered_subject)))
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    _set(msg, "List-Id", _list_id_value(list_id))
    _set(msg, "List-Unsubscribe", _words_value("List-Unsubscribe", _unsubscribe_words(unsubscribe_url, unsubscribe_mailto)))
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in (extra_headers or {}).items():
        if not _FIELD_NAME.fullmatch(name) or name.lower() in _RESERVED:
            raise MessageError(f"{name!r}: cannot be added as an extra header (it is reserved or not a header name)")
        _set(msg, name, _text_value(name, header_text(value)))

    msg.set_content(_lines(text), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(_lines(html), subtype="html", charset="utf-8", cte="quoted-printable")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # belongs on the message alone
    # Quoted-printable writes every '=' as "=3D" or a soft break, so a
    # boundary holding "=_" never occurs in a part. Deriving it from the
    # unique Message-ID keeps the bytes a function of the arguments.
    msg.set_boundary("=_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:32])
    try:
        return msg.as_bytes()
    except (ValueError, UnicodeError, email.errors.MessageError) as exc:
        raise MessageError(f"message {message_id} to {to.email!r} cannot be written: {exc}") from exc


def make_message_id(domain: str, *parts: str) -> str:
    """A Message-ID ``<hash.random@domain>`` unique to one delivery.

    ``parts`` (list, issue number, recipient, …) make the id traceable to a
    delivery for whoever knows them, without showing them; the uuid4 keeps
    two sends of the same delivery apart.
    """
    host = _ascii_domain(header_text(domain), "Message-ID").lower()
    if not _DOT_ATOM.fullmatch(host):
        raise MessageError(f"Message-ID: {domain!r} is not a domain such as example.org")
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"<{digest}.{uuid.uuid4().hex}@{host}>"


def list_id(list_name: str, title: str, site_host: str) -> str:
    """An RFC 2919 List-Id: ``Daily digest <daily.example.org>``.

    The title is the phrase mail clients show (quoted when it holds
    characters such as ',' or '<'); ``list_name.site_host`` is the id
    filters match on, so it must not change while the list exists.
    """
    host = _ascii_domain(header_text(site_host), "List-Id").lower()
    ident = f"{list_name}.{host}"
    if not _DOT_ATOM.fullmatch(ident) or len(ident) > 255:
        raise MessageError(f"List-Id: {ident!r} is not usable as a list id (letters, digits, - and _ in dot-separated words)")
    phrase = _phrase(header_text(title))
    return f"{phrase} <{ident}>" if phrase else f"<{ident}>"


def dkim_sign(message: bytes, *, domain: str, selector: str, private_key: bytes) -> bytes:
    """``message`` with a DKIM-Signature header (RSA-SHA256, relaxed/relaxed) prepended.

    ``private_key`` is the PEM key (PKCS#1 or PKCS#8) whose public half is
    published at ``selector._domainkey.domain``. Signs the headers in
    ``DKIM_HEADERS``, List-Unsubscribe and List-Unsubscribe-Post among them
    as RFC 8058 requires, and Reply-To even when absent, so that nobody can
    add one to a signed message and divert the replies.
    """
    where = f"{selector}._domainkey.{domain}"
    if not (_DKIM_NAME.fullmatch(domain) and _DKIM_NAME.fullmatch(selector)):
        raise MessageError(f"cannot DKIM-sign as {where!r}: the domain and selector are DNS names in ASCII")
    # dkimpy finds the PEM body by "\n"; a key file saved with CRLF would not parse.
    key = private_key.replace(b"\r\n", b"\n")
    try:
        signature = dkim.sign(
            message,
            selector.encode("ascii"),
            domain.encode("ascii"),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(DKIM_HEADERS),
        )
    except (dkim.DKIMException, ValueError, IndexError, TypeError) as exc:
        # ValueError includes binascii and Unicode errors from a damaged key.
        raise MessageError(f"cannot DKIM-sign as {where}: {exc}") from exc
    if not signature:
        raise MessageError(f"cannot DKIM-sign as {where}: dkimpy returned no signature")
    return signature + message


# --- addresses ---------------------------------------------------------------


def _mailbox(value: str, field: str) -> Address:
    """One address as the config writes it: ``Name <addr>`` or ``addr``, nothing more."""
    text = header_text(value)
    try:
        header = POLICY.header_factory("reply-to", text)  # a plain address-list parser
        addresses, defects = header.addresses, header.defects
    except (ValueError, IndexError, email.errors.HeaderParseError):
        addresses, defects = (), ("unparsable",)
    if len(addresses) != 1 or defects:
        raise MessageError(f"{field}: {value!r} is not one address such as 'Site <news@example.org>'")
    return _address(addresses[0].display_name, addresses[0].addr_spec, field)


def _address(name: str, addr: str, field: str) -> Address:
    """An ``Address`` whose display name is quoted or RFC 2047-encoded as needed."""
    name, addr = header_text(name), header_text(addr)
    if not addr.rpartition("@")[0].isascii():
        raise MessageError(f"{field}: {addr!r} has a non-ASCII local part, which needs SMTPUTF8 (not supported)")
    try:
        address = Address(addr_spec=addr)
        if not address.username or not address.domain:
            raise ValueError("it needs a local part and a domain")
        domain = _ascii_domain(address.domain, field)
        return Address(display_name=name, username=address.username, domain=domain)
    except (ValueError, IndexError, email.errors.HeaderParseError) as exc:
        raise MessageError(f"{field}: {addr!r} is not a usable address: {exc}") from None


def _ascii_domain(domain: str, field: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise MessageError(f"{field}: the domain {domain!r} cannot be written in ASCII: {exc}") from None


# --- headers folded here -----------------------------------------------------
#
# Python's email package (3.11) folds some headers wrongly: it wraps a long
# URL in RFC 2047 encoded-words, which no receiver decodes in
# List-Unsubscribe, and when it folds between two encoded-words it loses the
# space between them (CPython gh-144156), garbling long non-ASCII subjects
# and names. So every header that carries free text or a URL is folded
# here, and stored with ``set_raw`` so the generator writes it as it is.


def _set(msg: EmailMessage, name: str, value: str) -> None:
    """Store a folded ``value``; a line past RFC 5322's 998 octets is an error, not a wrap."""
    lines = f"{name}: {value}".split("\r\n")
    if any(len(line) > MAX_LINE for line in lines):
        raise MessageError(f"{name}: a value longer than {MAX_LINE} octets cannot be written on one line")
    msg.set_raw(name, value)


def _words_value(name: str, words: list[str]) -> str:
    """``words`` joined by spaces, a line break before a word that would pass 76 columns.

    The words are ASCII without control characters, which the callers
    ensure. An empty word stands for a second space in a row and never
    starts a line, so unfolding gives back exactly the words joined by spaces.
    """
    lines = [f"{name}:"]
    for word in words:
        if word and len(lines[-1]) + 1 + len(word) > FOLD_AT and lines[-1].strip() not in ("", f"{name}:"):
            lines.append("")
        lines[-1] += " " + word
    lines[0] = lines[0][len(name) + 2 :]
    return "\r\n".join(lines)


def _encoded_value(name: str, text: str) -> str:
    """``text`` as RFC 2047 encoded-words (UTF-8), folded so each line fits 76 columns.

    The legacy ``Header`` class keeps each space inside an encoded-word,
    so none is lost between two of them.
    """
    return Header(text, "utf-8", maxlinelen=MAX_EW_LINE, header_name=name).encode(linesep="\r\n")


def _plain(text: str) -> bool:
    """Whether ``text`` can go in a header as it is: ASCII, no word that needs splitting,
    and nothing a reader would decode as an encoded-word."""
    return text.isascii() and "=?" not in text and all(len(w) <= FOLD_AT - 10 for w in text.split(" "))


def _text_value(name: str, text: str) -> str:
    """An unstructured header (Subject, extra headers)."""
    return _words_value(name, text.split(" ")) if _plain(text) else _encoded_value(name, text)


def _phrase_value(name: str, phrase: str, tail: str) -> str:
    """A display name or list title followed by ``<addr>`` or ``<list-id>``."""
    return _words_value(name, [*_phrase_words(name, phrase), tail])


def _phrase_words(name: str, phrase: str) -> list[str]:
    """``phrase`` as RFC 5322 words: a quoted-string when it is plain ASCII, else
    atoms for its ASCII words and one encoded-word for each run of the others.

    Whitespace between two encoded-words is not part of the text (RFC 2047),
    so a run of words is encoded together, its spaces inside; it is split in
    several encoded-words only when it will not fit in one.
    """
    if not phrase or _plain(phrase):
        return _phrase(phrase).split(" ") if phrase else []
    width = MAX_EW_LINE - len(name) - 2  # an encoded-word fits after "Name: "
    words: list[str] = []
    run: list[str] = []
    for word in [*phrase.split(), None]:
        if word is not None and not (_ATOM.fullmatch(word) and "=?" not in word):
            run.append(word)
            continue
        if run:
            words += Header(" ".join(run), "utf-8", maxlinelen=width).encode(linesep="\n").split()
            run = []
        if word is not None:
            words.append(word)
    return words


def _mailbox_value(name: str, address: Address) -> str:
    return _phrase_value(name, address.display_name, f"<{address.addr_spec}>")


def _list_id_value(value: str) -> str:
    """A List-Id as ``list_id`` writes it; a title left unquoted is quoted or encoded here."""
    value = header_text(value)
    match = re.fullmatch(r"(.*?)\s*<([^<>\s]+)>", value)
    if not match or not _DOT_ATOM.fullmatch(match[2]):
        raise MessageError(f"List-Id: must look like 'Daily digest <daily.example.org>' (got {value!r})")
    title, tail = match[1], f"<{match[2]}>"
    if _QUOTED.fullmatch(title) and _plain(title):
        return _words_value("List-Id", [*title.split(" "), tail])
    return _phrase_value("List-Id", title, tail)


def _unsubscribe_words(url: str, mailto: str | None) -> list[str]:
    words = [_unsubscribe_url_word(url)]
    if mailto:
        words[0] += ","
        words.append(_unsubscribe_mailto_word(mailto))
    return words


# URLs that plainly pass the checks below (an http(s) host, then only
# characters allowed unescaped in a URL but for ","), as signed links are.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9._~!$&'()*+;=:@/?#%-]*")


def _unsubscribe_url_word(url: str) -> str:
    if _PLAIN_URL.fullmatch(url):
        return f"<{url}>"
    url = header_text(url)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or re.search(r"[\s<>,]|[^\x21-\x7e]", url):
        raise MessageError(
            f"List-Unsubscribe: {url!r} must be an absolute http(s) URL (https for one-click, "
            "RFC 8058) without spaces, commas, '<', '>' or non-ASCII characters (percent-encode them)"
        )
    return f"<{url}>"


def _unsubscribe_mailto_word(mailto: str) -> str:
    address = _mailbox(re.sub(r"(?i)^mailto:", "", header_text(mailto)), "List-Unsubscribe")
    return f"<mailto:{address.addr_spec}?subject=unsubscribe>"


def _phrase(text: str) -> str:
    """``text`` as an RFC 5322 phrase: a quoted-string when it holds specials (ASCII only;
    other text is encoded as a whole)."""
    if not text or not text.isascii() or not _SPECIALS.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lines(body: str) -> str:
    """``body`` with every line ending as "\\n" (the generator writes CRLF)."""
    return body.replace("\r\n", "\n").replace("\r", "\n")
