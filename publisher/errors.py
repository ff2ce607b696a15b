"""The error hierarchy: every failure a user can cause is a ``PublisherError``.

The command line turns these into one-line messages and exit codes; anything
else reaching it is a bug.

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc)          # publisher.toml: [site] url: must be an absolute http(s) URL
"""

from __future__ import annotations

import re
import tomllib


class PublisherError(Exception):
    """Base of every expected failure."""


class ConfigError(PublisherError):
    """The configuration is unusable; each problem is one line of the message."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(f"{path}: {p}" for p in self.problems))


class ContentError(PublisherError):
    """One input file cannot be published: ``path:line: reason``."""

    def __init__(self, path: str, line: int | None, reason: str):
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class StateError(PublisherError):
    """The state store cannot be opened, read or written."""


class StateUnavailable(StateError):
    """The state database cannot be reached, or the connection was lost mid-transaction."""


class OutputError(PublisherError):
    """An output file cannot be written; the previous one is left intact."""


class DeliveryError(PublisherError):
    """One message was not accepted. ``permanent`` failures (5xx) are not
    retried; ``code`` is the SMTP reply code when there was one."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None):
        self.permanent = permanent
        self.code = code
        super().__init__(message)


class TransportError(PublisherError):
    """The transport as a whole cannot send (authentication refused, TLS
    failure, outbox not writable): the send stops and the rest stays pending."""


_TOML_WHERE = re.compile(r" \(at (?:line (\d+), column \d+|end of document)\)$")


def toml_error(exc: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    """(line, reason) of a TOML error in ``text``; "end of document" is its last line."""
    message = str(exc)
    match = _TOML_WHERE.search(message)
    if match is None:
        return 1, message
    line = int(match.group(1)) if match.group(1) else max(1, len(text.rstrip("\n").split("\n")))
    return line, message[: match.start()]
