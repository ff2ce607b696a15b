"""The signing key file: the current secret and the ones it replaced.

``publisher init`` (or the first ``serve``/``send``) writes one line, the
current secret. ``publisher secret rotate`` puts a new secret on the first
line and keeps each replaced one below it with the moment it was retired:

    NEWSECRET...
    retired 2026-12-03T07:00:00+00:00 OLDSECRET...

Links signed with a retired secret keep working for ``[mail] secret_grace``
after its retirement, so the links already in readers' mailboxes survive a
rotation. This module only reads and writes that text; ``publisher.config``
reads the file, ``publisher.mail.tokens`` verifies against the ring.

    current, retired = parse_key_file(data)
    text = format_key_file(new, [(current, now), *retired])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

Retired = tuple[bytes, datetime]


class KeyFileError(ValueError):
    """A line of the key file that is neither a secret nor a retired secret."""


def parse_key_file(data: bytes) -> tuple[bytes | None, tuple[Retired, ...]]:
    """The current secret (None for an empty file) and the retired ones, newest first."""
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    if not lines:
        return None, ()
    retired = []
    for number, line in enumerate(lines[1:], 2):
        parts = line.split()
        try:
            if len(parts) != 3 or parts[0] != b"retired":
                raise ValueError("not 'retired DATE SECRET'")
            moment = datetime.fromisoformat(parts[1].decode("ascii"))
        except ValueError as exc:
            raise KeyFileError(f"line {number}: expected 'retired <ISO 8601 time> <secret>' ({exc})") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        retired.append((parts[2], moment))
    return lines[0], tuple(sorted(retired, key=lambda item: item[1], reverse=True))


def format_key_file(current: bytes, retired: Sequence[Retired]) -> bytes:
    """The key file's text for ``current`` and ``retired`` (newest first)."""
    lines = [current]
    for secret, moment in sorted(retired, key=lambda item: item[1], reverse=True):
        stamp = moment.astimezone(timezone.utc).isoformat(timespec="seconds")
        lines.append(b"retired " + stamp.encode("ascii") + b" " + secret)
    return b"\n".join(lines) + b"\n"
