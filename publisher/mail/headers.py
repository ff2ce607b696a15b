"""Header values: checked, folded and encoded as a message carries them.

Every text that reaches a header, whether from a post, a subscriber or the
config, goes through ``header_text`` first: control characters (CR and LF
among them) become spaces, so no value can start a header of its own.
Addresses are parsed and checked here (``parse_mailbox``,
``checked_address``), and each header value is folded at 76 columns, with
RFC 2047 encoded-words where the text is not plain ASCII. A bad value raises
``MessageError`` naming the header.
"""

from __future__ import annotations

import email.errors
import email.policy
import re
from email.header import Header
from email.headerregistry import Address
from urllib.parse import urlsplit

from publisher.errors import PublisherError

# Headers folded here are written as they are, never refolded; the few
# folded by the email package (Date, Message-ID, Content-Type) are folded
# as it folds them under this policy. The email package wraps
# quoted-printable at the policy's line length, and RFC 2045 allows 76
# columns, not SMTP's 78.
POLICY = email.policy.SMTP.clone(refold_source="none", max_line_length=76)

# RFC 5322: a line is at most 998 octets, and should be at most 78; one
# holding an RFC 2047 encoded-word at most 76. Lines are folded at 76.
MAX_LINE = 998
MAX_EW_LINE = 76
FOLD_AT = 76

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
DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_MSG_ID = re.compile(rf"<({DOT_ATOM.pattern})@({DOT_ATOM.pattern}|\[[!-Z^-~]*\])>")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


class MessageError(PublisherError):
    """A message cannot be built or signed: a bad address, header or DKIM key."""


def header_text(value: str) -> str:
    """``value`` made safe for one header: runs of control characters become one space.

    CR and LF are among them, so the result can never end one header and
    begin another. Leading and trailing whitespace is dropped, as a mail
    parser would drop it anyway.
    """
    return _CONTROLS.sub(" ", value).strip()


def fold_header(name: str, value: str) -> bytes:
    """A header exactly as ``EmailMessage`` folds and writes it under ``POLICY``."""
    return POLICY.fold_binary(name, POLICY.header_store_parse(name, value)[1])


def check_extra_header(name: str) -> None:
    """Raise ``MessageError`` unless ``name`` may be added as an extra header."""
    if not _FIELD_NAME.fullmatch(name) or name.lower() in _RESERVED:
        raise MessageError(f"{name!r}: cannot be added as an extra header (it is reserved or not a header name)")


def header_line(name: str, value: str) -> str:
    """``name: value`` as written, CRLF-terminated; a line past RFC 5322's 998
    octets is an error, not a wrap."""
    line = f"{name}: {value}"
    if any(len(part) > MAX_LINE for part in line.split("\r\n")):
        raise MessageError(f"{name}: a value longer than {MAX_LINE} octets cannot be written on one line")
    return line + "\r\n"


def checked_message_id(message_id: str) -> str:
    message_id = header_text(message_id)
    if not _MSG_ID.fullmatch(message_id):
        raise MessageError(f"Message-ID: must look like <unique@domain> (got {message_id!r})")
    return message_id


# A msg-id has no place to fold, so how the email package writes one depends
# on its length alone: on the header's line, or on a line of its own.
# Learnt per length from the package itself, then reused.
_MESSAGE_ID_SEPARATORS: dict[int, bytes] = {}


def message_id_line(message_id: str) -> bytes:
    encoded = message_id.encode("ascii")
    separator = _MESSAGE_ID_SEPARATORS.get(len(encoded))
    if separator is not None:
        return b"Message-ID:" + separator + encoded + b"\r\n"
    line = fold_header("Message-ID", message_id)
    prefix = line[: -len(encoded) - 2]
    if line.endswith(encoded + b"\r\n") and prefix in (b"Message-ID: ", b"Message-ID:\r\n "):
        _MESSAGE_ID_SEPARATORS[len(encoded)] = prefix[len(b"Message-ID:") :]
    return line


# An address the email package would take as it is: a dot-atom local part at
# an ASCII dot-atom domain. Anything else goes through ``checked_address``.
_PLAIN_ADDRESS = re.compile(rf"{DOT_ATOM.pattern}@{DOT_ATOM.pattern}", re.ASCII)


def to_value(name: str, addr: str) -> str:
    name, addr = header_text(name), header_text(addr)
    if _PLAIN_ADDRESS.fullmatch(addr):
        return phrase_value("To", name, f"<{addr}>")
    return mailbox_value("To", checked_address(name, addr, "To"))


# --- addresses ---------------------------------------------------------------


def parse_mailbox(value: str, field: str) -> Address:
    """One address as the config writes it: ``Name <addr>`` or ``addr``, nothing more."""
    text = header_text(value)
    try:
        header = POLICY.header_factory("reply-to", text)  # a plain address-list parser
        addresses, defects = header.addresses, header.defects
    except (ValueError, IndexError, email.errors.HeaderParseError):
        addresses, defects = (), ("unparsable",)
    if len(addresses) != 1 or defects:
        raise MessageError(f"{field}: {value!r} is not one address such as 'Site <news@example.org>'")
    return checked_address(addresses[0].display_name, addresses[0].addr_spec, field)


def checked_address(name: str, addr: str, field: str) -> Address:
    """An ``Address`` whose display name is quoted or RFC 2047-encoded as needed."""
    name, addr = header_text(name), header_text(addr)
    if not addr.rpartition("@")[0].isascii():
        raise MessageError(f"{field}: {addr!r} has a non-ASCII local part, which needs SMTPUTF8 (not supported)")
    try:
        address = Address(addr_spec=addr)
        if not address.username or not address.domain:
            raise ValueError("it needs a local part and a domain")
        domain = ascii_domain(address.domain, field)
        return Address(display_name=name, username=address.username, domain=domain)
    except (ValueError, IndexError, email.errors.HeaderParseError) as exc:
        raise MessageError(f"{field}: {addr!r} is not a usable address: {exc}") from None


def ascii_domain(domain: str, field: str) -> str:
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
# here and written as it is.


def words_value(name: str, words: list[str]) -> str:
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


def text_value(name: str, text: str) -> str:
    """An unstructured header (Subject, extra headers)."""
    return words_value(name, text.split(" ")) if _plain(text) else _encoded_value(name, text)


def phrase_value(name: str, phrase: str, tail: str) -> str:
    """A display name or list title followed by ``<addr>`` or ``<list-id>``."""
    return words_value(name, [*_phrase_words(name, phrase), tail])


def _phrase_words(name: str, phrase: str) -> list[str]:
    """``phrase`` as RFC 5322 words: a quoted-string when it is plain ASCII, else
    atoms for its ASCII words and one encoded-word for each run of the others.

    Whitespace between two encoded-words is not part of the text (RFC 2047),
    so a run of words is encoded together, its spaces inside; it is split in
    several encoded-words only when it will not fit in one.
    """
    if not phrase or _plain(phrase):
        return quoted_phrase(phrase).split(" ") if phrase else []
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


def mailbox_value(name: str, address: Address) -> str:
    return phrase_value(name, address.display_name, f"<{address.addr_spec}>")


def list_id_value(value: str) -> str:
    """A List-Id as ``list_id`` writes it; a title left unquoted is quoted or encoded here."""
    value = header_text(value)
    match = re.fullmatch(r"(.*?)\s*<([^<>\s]+)>", value)
    if not match or not DOT_ATOM.fullmatch(match[2]):
        raise MessageError(f"List-Id: must look like 'Daily digest <daily.example.org>' (got {value!r})")
    title, tail = match[1], f"<{match[2]}>"
    if _QUOTED.fullmatch(title) and _plain(title):
        return words_value("List-Id", [*title.split(" "), tail])
    return phrase_value("List-Id", title, tail)


# URLs that plainly pass the checks below (an http(s) host, then only
# characters allowed unescaped in a URL but for ","), as signed links are.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9._~!$&'()*+;=:@/?#%-]*")


def unsubscribe_url_word(url: str) -> str:
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


def unsubscribe_mailto_word(mailto: str) -> str:
    address = parse_mailbox(re.sub(r"(?i)^mailto:", "", header_text(mailto)), "List-Unsubscribe")
    return f"<mailto:{address.addr_spec}?subject=unsubscribe>"


def quoted_phrase(text: str) -> str:
    """``text`` as an RFC 5322 phrase: a quoted-string when it holds specials (ASCII only;
    other text is encoded as a whole)."""
    if not text or not text.isascii() or not _SPECIALS.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
