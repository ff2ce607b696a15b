"""The body parts of a message: quoted-printable text, encoded once per issue.

``BodyTemplate`` holds one part (text/plain or text/html, UTF-8) as
``MessageFactory`` writes it: its Content-Type and Content-Transfer-Encoding
headers, then the body in quoted-printable, exactly as the email package
encodes it (``quoprimime.body_encode`` at 76 columns, CRLF line breaks).
Quoted-printable is line-local, so the lines without a slot are encoded once
and only those holding one are encoded per recipient.

A part can also be written as SMTP's DATA carries it (``SmtpData``): every
"." that starts a line doubled. Every piece of a part starts a line, so the
pieces are stuffed one by one: the fixed ones once, with the encoding, and
per recipient only the lines holding a slot. Stuffing the whole message
per recipient (``bytes.replace`` over 80 KB) cost more than composing it.

Hand-written for speed: per recipient, ``quoprimime.body_encode`` of the whole part takes
46-65x as long, C ``quopri.encodestring`` 13-14x (``python -m bench handwritten``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email import quoprimime

from publisher.mail.headers import MAX_EW_LINE, fold_header


class SmtpData(bytes):
    """A whole message as SMTP's DATA carries it: every "." that starts a line
    doubled (as smtplib does after any line feed), ended by CRLF "." CRLF.
    An SMTP connection sends it as it is."""


def stuffed(piece: bytes) -> bytes:
    """``piece``, which starts a line, with every "." that starts a line doubled."""
    if piece.startswith(b"."):
        piece = b"." + piece
    return piece.replace(b"\n.", b"\n..")


def dot_stuffed(message: bytes) -> SmtpData:
    """``message`` as DATA carries it: every "." that starts a line doubled (as
    smtplib's regex does, after any line feed), ended by CRLF "." CRLF."""
    if isinstance(message, SmtpData):
        return message
    data = stuffed(message)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return SmtpData(data + b".\r\n")


class BodyTemplate:
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
            fold_header("Content-Type", f'{content_type}; charset="utf-8"')
            + fold_header("Content-Transfer-Encoding", "quoted-printable")
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
                chunks.append(_encode_lines(_terminated(lf_lines(text))))
        self.chunks = tuple(chunk for chunk in chunks if chunk)
        # The same, dot-stuffed for SMTP's DATA: every chunk starts a line.
        self.stuffed_chunks = tuple(stuffed(chunk) if type(chunk) is bytes else chunk for chunk in self.chunks)
        self.slots = frozenset(found)

    def encode(self, values: Mapping[str, str], out: list[bytes], *, stuff: bool = False) -> None:
        """Append the encoded part to ``out``; ``stuff``: dot-stuffed as DATA carries it."""
        start = len(out)
        for chunk in self.stuffed_chunks if stuff else self.chunks:
            if type(chunk) is bytes:
                out.append(chunk)
            else:
                encoded = chunk.encode(values)
                if encoded:
                    out.append(stuffed(encoded) if stuff else encoded)
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
        text = lf_lines("".join(parts))
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

    No cut falls where ``lf_lines`` could join text across it once the slots
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
    """``text`` (after ``lf_lines``) with a final line break, as MIME's canonical form
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


def lf_lines(body: str) -> str:
    """``body`` with every line ending as "\\n" (the generator writes CRLF)."""
    return body.replace("\r\n", "\n").replace("\r", "\n")
