"""Unsubscribe tokens: they round-trip, and nothing else verifies."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.errors import PublisherError
from publisher.mail.tokens import (
    MAX_TOKEN_CHARS,
    TokenClaims,
    TokenError,
    new_secret,
    sign_token,
    verify_token,
)

SECRET = b"0123456789abcdef0123456789abcdef"
OTHER_SECRET = b"fedcba9876543210fedcba9876543210"
URL_SAFE = set(string.ascii_letters + string.digits + "-_.")


def test_round_trip() -> None:
    token = sign_token(SECRET, "reader@example.org", "daily")
    assert verify_token(SECRET, token) == TokenClaims("reader@example.org", "daily", "unsubscribe")


def test_round_trip_non_ascii_subscriber_and_list() -> None:
    token = sign_token(SECRET, "Søren <søren@例え.jp>", "日本語", purpose="preferences")
    claims = verify_token(SECRET, token, purpose="preferences")
    assert claims == TokenClaims("Søren <søren@例え.jp>", "日本語", "preferences")


# Tokens as issued: links with these are in readers' mailboxes, so they must
# verify, and be made again, exactly as they are.
ISSUED = [
    ("reader@example.org", "daily", "unsubscribe", "v1.cmVhZGVyQGV4YW1wbGUub3Jn.ZGFpbHk.7mNlJg72z-hm0-Un6j5GjmTMKqNe9OPUbiIwzJiwBmo"),
    ("søren@exämple.org", "täglich", "unsubscribe", "v1.c8O4cmVuQGV4w6RtcGxlLm9yZw.dMOkZ2xpY2g.U2i965JTqTsnd8gua14MY7WRGPK2tvLsurAn2bPmI5Q"),
    ("reader@example.org", "weekly", "preferences", "v1.cmVhZGVyQGV4YW1wbGUub3Jn.d2Vla2x5.aRA0qCd1uFC8ZDT66uKBC6pSJu1dFQSMtFeQ0QCmBwk"),
    ("a+b@example.net", "daily weekly", "confirm", "v1.YStiQGV4YW1wbGUubmV0.ZGFpbHkgd2Vla2x5.HWuL-cnNEWx06NZEXLNyi5yJZISPTjAO_7Xye1T5mUQ"),
]


@pytest.mark.parametrize(("subscriber", "list_name", "purpose", "token"), ISSUED)
def test_tokens_already_issued_still_verify(subscriber: str, list_name: str, purpose: str, token: str) -> None:
    assert verify_token(SECRET, token, purpose) == TokenClaims(subscriber, list_name, purpose)
    assert sign_token(SECRET, subscriber, list_name, purpose) == token


def test_token_is_url_safe_versioned_and_unpadded() -> None:
    token = sign_token(SECRET, "reader@example.org", "daily")
    assert set(token) <= URL_SAFE
    assert "=" not in token
    assert token.startswith("v1.")
    assert token.count(".") == 3


def test_tokens_are_deterministic_and_distinct() -> None:
    a = sign_token(SECRET, "a@example.org", "daily")
    assert a == sign_token(SECRET, "a@example.org", "daily")
    assert a != sign_token(SECRET, "b@example.org", "daily")
    assert a != sign_token(SECRET, "a@example.org", "weekly")
    assert a != sign_token(OTHER_SECRET, "a@example.org", "daily")


def test_every_single_character_alteration_fails() -> None:
    token = sign_token(SECRET, "reader@example.org", "daily")
    alphabet = string.ascii_letters + string.digits + "-_.=+/ é"
    for position, original in enumerate(token):
        for replacement in alphabet:
            if replacement == original:
                continue
            altered = token[:position] + replacement + token[position + 1 :]
            assert verify_token(SECRET, altered) is None, (position, replacement)


def test_every_truncation_and_extension_fails() -> None:
    token = sign_token(SECRET, "reader@example.org", "daily")
    for end in range(len(token)):
        assert verify_token(SECRET, token[:end]) is None, end
    for suffix in ("A", "=", ".", "==", ".AAAA", "\n", " "):
        assert verify_token(SECRET, token + suffix) is None, suffix


def test_spare_bits_in_the_last_character_do_not_verify() -> None:
    # 32 signature bytes are 43 base64 characters with 2 spare bits: a
    # lenient decoder reads several spellings of the last one as the same bytes.
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    token = sign_token(SECRET, "a@example.org", "daily")
    head, last = token[:-1], token[-1]
    group = alphabet.index(last) & ~3
    siblings = [alphabet[group + i] for i in range(4) if alphabet[group + i] != last]
    assert len(siblings) == 3
    assert all(base64.urlsafe_b64decode(head[-42:] + s + "=") == base64.urlsafe_b64decode(head[-42:] + last + "=") for s in siblings)
    for sibling in siblings:
        assert verify_token(SECRET, head + sibling) is None


def test_spare_bits_in_a_field_do_not_verify() -> None:
    # "a" encodes as "YQ"; a lenient decoder also reads "YR" as "a".
    token = sign_token(SECRET, "a", "daily")
    version, subscriber, rest = token.split(".", 2)
    assert subscriber == "YQ"
    assert verify_token(SECRET, f"{version}.YR.{rest}") is None


def test_a_token_does_not_verify_under_another_secret() -> None:
    token = sign_token(SECRET, "reader@example.org", "list-a")
    assert verify_token(OTHER_SECRET, token) is None
    assert verify_token(SECRET + b"x", token) is None


def test_fields_cannot_be_swapped_between_tokens() -> None:
    mine = sign_token(SECRET, "me@example.org", "daily")
    theirs = sign_token(SECRET, "victim@example.org", "daily")
    v, _, list_part, my_signature = mine.split(".")
    _, their_subscriber, _, _ = theirs.split(".")
    assert verify_token(SECRET, f"{v}.{their_subscriber}.{list_part}.{my_signature}") is None


def test_wrong_purpose_fails() -> None:
    token = sign_token(SECRET, "reader@example.org", "daily", purpose="preferences")
    assert verify_token(SECRET, token, purpose="preferences") is not None
    assert verify_token(SECRET, token) is None
    assert verify_token(SECRET, sign_token(SECRET, "reader@example.org", "daily"), purpose="preferences") is None


def test_another_version_prefix_fails() -> None:
    token = sign_token(SECRET, "reader@example.org", "daily")
    assert verify_token(SECRET, "v2" + token[2:]) is None
    assert verify_token(SECRET, token[3:]) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "...",
        ".",
        "v1",
        "v1.",
        "v1...",
        "v1.a.b.c",
        "v1.YQ.ZGFpbHk.",
        "v1.=.=.=",
        "v1.YQ==.ZGFpbHk.AAAA",
        "søren",
        "v1.søren.日本語.é",
        "\x00\r\n",
        "v1." + "A" * 100_000,
        "A" * (MAX_TOKEN_CHARS + 1),
        "%2E%2E%2F",
        "v1.YQ.ZGFpbHk.\ud800",
    ],
    ids=lambda g: repr(g[:20]),
)
def test_garbage_returns_none(garbage: str) -> None:
    assert verify_token(SECRET, garbage) is None


@pytest.mark.parametrize("not_text", [None, b"v1.YQ.ZGFpbHk.AAAA", 42, ["v1"]])
def test_a_token_that_is_not_text_returns_none(not_text: object) -> None:
    assert verify_token(SECRET, not_text) is None  # type: ignore[arg-type]


def test_empty_subscriber_or_list_cannot_be_signed() -> None:
    with pytest.raises(ValueError):
        sign_token(SECRET, "", "daily")
    with pytest.raises(ValueError):
        sign_token(SECRET, "reader@example.org", "")


@pytest.mark.parametrize("secret", [b"", b"short", None, "a text secret of enough length"])
def test_a_missing_or_short_secret_is_a_setup_error(secret: object) -> None:
    with pytest.raises(TokenError, match="publisher init"):
        sign_token(secret, "reader@example.org", "daily")  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        verify_token(secret, "v1.YQ.ZGFpbHk.AAAA")  # type: ignore[arg-type]
    assert issubclass(TokenError, PublisherError)


@pytest.mark.parametrize("purpose", ["", "Unsubscribe", "un.subscribe", "a b", "x" * 40])
def test_a_malformed_purpose_is_a_setup_error(purpose: str) -> None:
    with pytest.raises(TokenError, match="purpose"):
        sign_token(SECRET, "reader@example.org", "daily", purpose=purpose)


def test_new_secret_is_32_random_bytes_as_text() -> None:
    secret = new_secret()
    assert isinstance(secret, bytes)
    assert len(base64.urlsafe_b64decode(secret + b"=")) == 32
    assert secret.decode("ascii").strip() == secret.decode("ascii")
    assert new_secret() != secret
    assert verify_token(secret, sign_token(secret, "a@example.org", "daily")) is not None


# --- properties ------------------------------------------------------------------

names = st.text(min_size=1, max_size=300)
secrets_ = st.binary(min_size=16, max_size=128)


@given(secret=secrets_, subscriber=names, list_name=names)
def test_property_round_trip(secret: bytes, subscriber: str, list_name: str) -> None:
    token = sign_token(secret, subscriber, list_name)
    assert set(token) <= URL_SAFE
    assert verify_token(secret, token) == TokenClaims(subscriber, list_name, "unsubscribe")


@given(token=st.text(max_size=500))
def test_property_arbitrary_text_never_raises(token: str) -> None:
    assert verify_token(SECRET, token) is None


@settings(max_examples=200)
@given(subscriber=names, data=st.data())
def test_property_any_alteration_fails(subscriber: str, data: st.DataObject) -> None:
    token = sign_token(SECRET, subscriber, "daily")
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != token[position]))
    altered = token[:position] + replacement + token[position + 1 :]
    assert verify_token(SECRET, altered) is None
