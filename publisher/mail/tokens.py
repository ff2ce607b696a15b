"""Signed tokens: who may unsubscribe from which list, without a login.

A token carries a subscriber and a list name and is signed with HMAC-SHA256
under the site's secret (``MailSettings.secret``: an environment variable or
the key file ``publisher init`` writes). Verification is constant-time, and
any token that is malformed, truncated, altered, signed under another secret
or for another purpose verifies as ``None``; it never raises.

    token = sign_token(secret, "reader@example.org", "daily")
    claims = verify_token(secret, token)        # TokenClaims(...) or None
    url = f"https://example.org/unsubscribe/{token}"

The format is ``v1.<subscriber>.<list>.<signature>``: each field base64url
without padding, so a token is safe in a URL path or query without quoting.
The subscriber and list are readable by whoever holds the token (it is in
their own mailbox); only the signature makes them trustworthy. The purpose
("unsubscribe", "preferences", …) is covered by the signature but not
carried, so a token made for one purpose is useless for another. The version
prefix is covered too: a later format (a key id for rotation, say) gets a new
prefix, and ``verify_token`` can keep accepting ``v1`` while it is in use.

Kept as written rather than itsdangerous: ``v1`` tokens are in readers' mailboxes already.
itsdangerous would replace only the HMAC and base64 calls here, in a token format of its
own; what it adds (expiry with ``max_age``, several keys) would come as a new prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from publisher.errors import PublisherError

VERSION = "v1"
# Shorter secrets make forgeable tokens; `publisher init` writes 43 bytes.
MIN_SECRET_BYTES = 16
# Far above any real token (an address is at most 254 octets): rejecting
# longer input first keeps a hostile URL from costing more than a regex.
MAX_TOKEN_CHARS = 2048

_FIELD = r"[A-Za-z0-9_-]+"
_TOKEN = re.compile(rf"({VERSION}\.({_FIELD})\.({_FIELD}))\.({_FIELD})")
_PURPOSE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class TokenError(PublisherError):
    """The secret cannot sign tokens (missing or too short), or a purpose is malformed."""


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token vouches for."""

    subscriber: str
    list_name: str
    purpose: str


def new_secret() -> bytes:
    """A fresh signing secret: 32 random bytes as base64url text (43 ASCII bytes).

    Text, so it can live in an environment variable or a one-line key file.
    """
    return _b64encode(secrets.token_bytes(32)).encode("ascii")


def sign_token(secret: bytes, subscriber: str, list_name: str, purpose: str = "unsubscribe") -> str:
    """A URL-safe token vouching that ``subscriber`` may act on ``list_name`` for ``purpose``.

    Deterministic: the same inputs always give the same token, so a link
    re-sent in a later issue is the same link.
    """
    _check(secret, purpose)
    if not subscriber or not list_name:
        raise ValueError("a token needs a subscriber and a list name")
    payload = f"{VERSION}.{_b64encode(subscriber.encode('utf-8'))}.{_b64encode(list_name.encode('utf-8'))}"
    return f"{payload}.{_signature(secret, purpose, payload)}"


def verify_token(secret: bytes, token: str, purpose: str = "unsubscribe") -> TokenClaims | None:
    """The claims of ``token`` if ``secret`` signed it for ``purpose``, else None.

    Never raises for a bad token, whatever it holds: a wrong type, garbage,
    non-ASCII text, a truncated or altered token are all simply None. A
    missing or too-short secret, or a malformed purpose, is a setup error
    and raises ``TokenError``, so that a misconfigured site fails loudly
    instead of silently rejecting every unsubscribe.
    """
    _check(secret, purpose)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    payload, subscriber, list_name, signature = match.groups()
    # Compare the signature as text: a base64 string has spare low bits, so
    # comparing decoded bytes would accept a changed last character.
    if not hmac.compare_digest(_signature(secret, purpose, payload), signature):
        return None
    try:
        claims = TokenClaims(_b64decode(subscriber), _b64decode(list_name), purpose)
    except ValueError:
        return None  # signed by us, so only reachable with a leaked secret
    return claims


def verify_token_ring(
    secret: bytes,
    token: str,
    purpose: str,
    *,
    retired: Sequence[tuple[bytes, datetime]] = (),
    grace: timedelta = timedelta(0),
    now: datetime | None = None,
) -> TokenClaims | None:
    """``verify_token`` under ``secret``, else under each ``retired`` secret
    still within ``grace`` of its retirement at ``now`` (``publisher.keyring``):
    links already in mailboxes outlive a rotation of the secret."""
    found = verify_token(secret, token, purpose)
    if found is not None or now is None:
        return found
    for old, moment in retired:
        if now - moment <= grace and len(old) >= MIN_SECRET_BYTES:
            found = verify_token(old, token, purpose)
            if found is not None:
                return found
    return None


def _check(secret: bytes, purpose: str) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        size = len(secret) if isinstance(secret, bytes) else "no"
        raise TokenError(
            f"the unsubscribe secret has {size} bytes; it needs at least {MIN_SECRET_BYTES} "
            "(create one with `publisher init`, or set the variable [mail] secret_env names)"
        )
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise TokenError(f"a token purpose is a short lower-case word such as 'unsubscribe' (got {purpose!r})")


def _signature(secret: bytes, purpose: str, payload: str) -> str:
    # The purpose comes first and cannot contain '.', so no payload of one
    # purpose reads as a payload of another.
    message = f"{purpose}.{payload}".encode("ascii")
    return _b64encode(hmac.new(secret, message, hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(field: str) -> str:
    """Decode one field strictly: only the one canonical spelling of each value is accepted."""
    try:
        data = base64.urlsafe_b64decode(field + "=" * (-len(field) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    if _b64encode(data) != field:
        raise ValueError("not canonical base64url")
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not text:
        raise ValueError("empty field")
    return text


def write_secret(path: Path) -> bytes:
    """Create the key file at ``path`` (mode 0600) with a new secret; returns it.

    Refuses to replace an existing file: a new secret would void every
    unsubscribe link already in readers' mailboxes.
    """
    secret = new_secret()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise TokenError(f"{path}: already exists; keeping it (links signed with it stay valid)") from None
    except OSError as exc:
        raise TokenError(f"{path}: cannot create the secret: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return secret
