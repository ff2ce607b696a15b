"""VERP: a per-recipient envelope sender that says, signed, which delivery bounced.

With ``[mail] bounce_address = "bounces@example.org"`` each delivery leaves
with the envelope sender ``bounces+<token>@example.org``, where the token is
the delivery's id and an HMAC-SHA256 of it and the recipient under the
site's secret. A bounce comes back to that address, so the token names the
delivery (the issue and the subscriber) whatever the bounce itself says,
and a bounce forged for someone else has no valid token.

    sender = verp_sender("bounces@example.org", 42, "ann@example.net", secret)
    # 'bounces+16.k3x0f6lgpm4rq7ua@example.org'
    token = find_token(["bounces+16.k3x0f6lgpm4rq7ua@example.org"], "bounces@example.org")
    token.delivery_id, token.valid_for("ann@example.net", secret)   # 42, True

The token is lower-case letters and digits (a mail server may fold the
case of a local part) and at most ``VERP_TOKEN_MAX`` characters, so the
local part stays within RFC 5321's 64 octets. Only the envelope changes:
the From, the DKIM signature (which never covers Return-Path) and every
header stay as they were.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import getaddresses

from publisher.config_values import VERP_TOKEN_MAX

_MAC_CHARS = 16  # 80 bits of HMAC-SHA256, base32
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if not number:
            return text


def _mac(secret: bytes, delivery_id: int, email: str) -> str:
    message = b"verp\x00%d\x00%s" % (delivery_id, email.lower().encode("utf-8", "surrogatepass"))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_CHARS]


def make_token(delivery_id: int, email: str, secret: bytes) -> str:
    """The token of one delivery: ``<id in base 36>.<signature>``."""
    if delivery_id < 0:
        raise ValueError(f"a delivery id is 0 or more (got {delivery_id})")
    token = f"{_base36(delivery_id)}.{_mac(secret, delivery_id, email)}"
    assert len(token) <= VERP_TOKEN_MAX, token
    return token


def verp_sender(bounce_address: str, delivery_id: int, email: str, secret: bytes) -> str:
    """The envelope sender of one delivery: ``local+token@domain``."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{make_token(delivery_id, email, secret)}@{domain}"


@dataclass(frozen=True)
class VerpToken:
    """A token found in an address: who it claims, not yet checked."""

    address: str
    delivery_id: int
    mac: str

    def valid_for(self, email: str, secret: bytes) -> bool:
        """Was this token made for a delivery of ``delivery_id`` to ``email`` under ``secret``?"""
        return hmac.compare_digest(self.mac, _mac(secret, self.delivery_id, email))


def _pattern(bounce_address: str) -> re.Pattern[str]:
    local, _, domain = bounce_address.rpartition("@")
    return re.compile(
        rf"{re.escape(local)}\+([0-9a-z]{{1,13}})\.([a-z2-7]{{{_MAC_CHARS}}})@{re.escape(domain)}",
        re.IGNORECASE,
    )


def looks_like_verp(address: str, bounce_address: str) -> bool:
    """Is ``address`` the bounce address with something after the '+' (a token, valid or not)?"""
    local, _, domain = bounce_address.rpartition("@")
    found_local, _, found_domain = address.strip().strip("<>").rpartition("@")
    return found_domain.lower() == domain.lower() and found_local.lower().startswith(local.lower() + "+")


def find_token(addresses: Iterable[str], bounce_address: str) -> VerpToken | None:
    """The first well-formed token among ``addresses`` (header values such as
    ``Delivered-To`` or a quoted ``Return-Path``), or None."""
    pattern = _pattern(bounce_address)
    for _, address in getaddresses([a for a in addresses if a]):
        match = pattern.fullmatch(address.strip())
        if match and len(match.group(1)) <= 13:
            delivery_id = int(match.group(1).lower(), 36)
            return VerpToken(address=address.strip(), delivery_id=delivery_id, mac=match.group(2).lower())
    return None


def envelope_sender(
    sender_address: str, bounce_address: str | None, secret: bytes | None
) -> Callable[[int, str], str]:
    """The envelope sender of each delivery ``(delivery_id, email)``: VERP
    when a bounce address and a secret are set, else ``sender_address``."""
    if bounce_address is None or secret is None:
        return lambda delivery_id, email: sender_address
    return lambda delivery_id, email: verp_sender(bounce_address, delivery_id, email, secret)
