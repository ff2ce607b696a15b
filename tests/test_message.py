"""The digest email as bytes: parsed back with Python's email parser and checked."""

from __future__ import annotations

import base64
import email
import re
import email.policy
from datetime import timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import dkim
import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.errors import PublisherError
from publisher.mail.message import (
    MessageError,
    build_message,
    dkim_sign,
    header_text,
    list_id,
    make_message_id,
)
from publisher.model import Personal

from .conftest import NOW

UNSUBSCRIBE = "https://example.org/unsubscribe/v1.cmVhZGVyQGV4YW1wbGUub3Jn.ZGFpbHk.sig-sig_sig"
TEXT = "Today's posts\n\n1. Søren writes about 日本語 [1]\n\n[1] https://example.org/a/\n"
HTML = '<!DOCTYPE html>\n<html lang="en"><body><p>Søren writes about 日本語</p></body></html>\n'


def recipient(name: str = "Reader One", address: str = "reader@example.org") -> Personal:
    return Personal(
        email=address,
        name=name,
        unsubscribe_url=UNSUBSCRIBE,
        preferences_url="https://example.org/preferences/x",
        view_url="https://example.org/issues/daily/1/",
    )


def build(**changes: Any) -> bytes:
    arguments: dict[str, Any] = dict(
        rendered_subject="War in Context: Hello and 2 more",
        html=HTML,
        text=TEXT,
        sender="War in Context <news@example.org>",
        to=recipient(),
        reply_to="Editor <editor@example.org>",
        list_id="Daily digest <daily.example.org>",
        unsubscribe_url=UNSUBSCRIBE,
        unsubscribe_mailto="unsubscribe@example.org",
        message_id="<0123abcd.4567@example.org>",
        date=NOW,
    )
    arguments.update(changes)
    return build_message(
        arguments.pop("rendered_subject"), arguments.pop("html"), arguments.pop("text"), **arguments
    )


def parse(data: bytes) -> EmailMessage:
    """Parse ``data`` and check what every message we build must satisfy."""
    lines = data.split(b"\r\n")
    assert data.endswith(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines), "a bare CR or LF"
    assert max(len(line) for line in lines) <= 998
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii(), "raw non-ASCII in a header"
    for line in head.split(b"\r\n"):
        assert line.strip(), "a header line of only whitespace"
        if b"=?" in line:
            assert len(line) <= 76, f"RFC 2047 allows 76 columns on a line with encoded-words: {line!r}"
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg.defects == []
    for part in msg.walk():
        assert part.defects == [], part.get_content_type()
        for name, value in part.items():
            assert value.defects == (), name
    return msg


def parts(msg: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    text, html = msg.iter_parts()
    return text, html


def canonical(body: str) -> str:
    """A decoded part with MIME's CRLF line endings read back as "\\n"."""
    return body.replace("\r\n", "\n")


# --- structure ---------------------------------------------------------------


def test_headers_are_present_and_right() -> None:
    msg = parse(build())
    assert msg["From"] == "War in Context <news@example.org>"
    assert msg["From"].addresses[0].addr_spec == "news@example.org"
    assert msg["To"] == "Reader One <reader@example.org>"
    assert msg["Reply-To"] == "Editor <editor@example.org>"
    assert msg["Subject"] == "War in Context: Hello and 2 more"
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == "<0123abcd.4567@example.org>"
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Id"] == "Daily digest <daily.example.org>"
    assert msg["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE}>, <mailto:unsubscribe@example.org?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert len(msg.get_all(name)) == 1, name


def test_optional_headers_are_left_out() -> None:
    msg = parse(build(reply_to=None, unsubscribe_mailto=None))
    assert "Reply-To" not in msg
    assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_recipient_without_a_name_gets_the_bare_address() -> None:
    msg = parse(build(to=recipient(name="")))
    assert msg["To"] == "reader@example.org"


def test_multipart_alternative_text_first_then_html() -> None:
    msg = parse(build())
    assert msg.get_content_type() == "multipart/alternative"
    text, html = parts(msg)
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    for part in (text, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert "MIME-Version" not in part


def test_parts_decode_back_to_the_input() -> None:
    text, html = parts(parse(build()))
    assert canonical(text.get_content()) == TEXT
    assert canonical(html.get_content()) == HTML


def test_parts_are_canonical_crlf_with_a_final_line_break() -> None:
    data = build(text="one\r\ntwo\rthree", html="<p>x</p>")
    text, html = parts(parse(data))
    assert text.get_content() == "one\r\ntwo\r\nthree\r\n"
    assert html.get_content() == "<p>x</p>\r\n"


def test_a_50_kb_single_line_html_keeps_every_line_under_998_octets() -> None:
    long_html = "<html><body>" + "".join(f'<p style="color:#333">Søren {i} 日本語</p>' for i in range(1500)) + "</body></html>"
    assert len(long_html.encode("utf-8")) > 50_000 and "\n" not in long_html
    long_text = "word " * 2000
    data = build(html=long_html, text=long_text)
    text, html = parts(parse(data))
    assert canonical(html.get_content()) == long_html + "\n"
    assert canonical(text.get_content()) == long_text + "\n"
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable's own limit


def test_body_text_that_looks_like_mime_does_not_break_the_structure() -> None:
    tricky = "--=_boundary\nContent-Type: text/html\n\n.\nFrom the start\n=3D=\n"
    msg = parse(build(text=tricky, html=tricky))
    text, html = parts(msg)
    assert canonical(text.get_content()) == tricky
    assert canonical(html.get_content()) == tricky


def test_same_arguments_give_the_same_bytes() -> None:
    assert build() == build()
    assert build() != build(message_id="<other@example.org>")


def test_date_keeps_its_timezone() -> None:
    eastern = NOW.astimezone(timezone(timedelta(hours=-5)))
    msg = parse(build(date=eastern))
    assert msg["Date"].endswith("-0500")
    assert msg["Date"].datetime == NOW


def test_extra_headers_are_added() -> None:
    msg = parse(build(extra_headers={"X-Publisher-Issue": "daily/7", "Precedence": "bulk"}))
    assert msg["X-Publisher-Issue"] == "daily/7"
    assert msg["Precedence"] == "bulk"


# --- non-ASCII ---------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    ["Søren's digest", "日本語のニュース", "Ünïcödé " * 40, "mixed ASCII and 日本語 " * 12, "a  b 日本語  c"],
)
def test_non_ascii_subjects_round_trip(subject: str) -> None:
    data = build(rendered_subject=subject)
    assert b"=?utf-8?" in data.split(b"\r\n\r\n", 1)[0]
    assert parse(data)["Subject"] == subject.strip()


@pytest.mark.parametrize(
    "subject",
    [
        "War in Context: a plain ASCII subject that is long enough to be folded onto a second line or third " * 3,
        "keeps  two   spaces and then some more words to make it fold somewhere past column seventy-eight",
        "x" * 2000,
        "see https://example.org/" + "a" * 300 + " and https://example.org/" + "b" * 300,
        "looks encoded: =?utf-8?q?S=C3=B8ren?= but is not",
        "",
    ],
)
def test_ascii_subjects_round_trip_exactly(subject: str) -> None:
    assert parse(build(rendered_subject=subject))["Subject"] == subject.strip()


@pytest.mark.parametrize(
    "name",
    [
        "Søren Kierkegaard",
        "日本語 太郎",
        'Doe, "Johnny" <admin@example.org>',
        "O'Brien (work); the [boss]",
        'Søren "O\'Brien", <x> & 日本語',
        "a\\b",
        "Søren Kierkegaard-Ünïcödé and mixed ASCII words here " * 3,
        "mixed ASCII and 日本語 " * 6,
        "a" * 100 + " " + "b" * 100,
        "An Ordinary But Very Long Name That Goes Past The Folding Column Easily, Esq.",
        "=?utf-8?q?not_encoded?=",
        '"Bob" the "Builder"',
        '"quoted"',
    ],
)
def test_recipient_names_round_trip(name: str) -> None:
    msg = parse(build(to=recipient(name=name)))
    (address,) = msg["To"].addresses
    assert address.display_name == name.strip()
    assert address.addr_spec == "reader@example.org"


def test_a_name_longer_than_one_encoded_word_decodes_exactly() -> None:
    # Python's address parser puts a space between two encoded-words of a
    # display name, which RFC 2047 says to drop; decode the raw header the
    # standard way instead.
    name = "日本語の名前" * 10 + " Søren Ünïcödé-Kierkegaard"
    data = build(to=recipient(name=name))
    parse(data)
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to = re.search(r"^To: (.*?)\r\n(?! )", head, re.M | re.S)
    assert to is not None and to[1].count("=?utf-8?") > 1
    assert str(make_header(decode_header(to[1].replace("\r\n", "")))) == f"{name} <reader@example.org>"


def test_non_ascii_sender_name_round_trips() -> None:
    msg = parse(build(sender="Søren's 日本語 Blog <news@example.org>", reply_to="Søren <s@example.org>"))
    assert msg["From"].addresses[0].display_name == "Søren's 日本語 Blog"
    assert msg["Reply-To"].addresses[0].display_name == "Søren"


def test_an_internationalised_domain_is_written_as_punycode() -> None:
    msg = parse(build(to=recipient(address="reader@bücher.example")))
    assert msg["To"].addresses[0].domain == "xn--bcher-kva.example"


def test_a_non_ascii_local_part_is_refused() -> None:
    with pytest.raises(MessageError, match="To:.*SMTPUTF8"):
        build(to=recipient(address="søren@example.org"))


# --- header injection --------------------------------------------------------


def test_subject_and_name_cannot_inject_headers() -> None:
    data = build(
        rendered_subject="Weekly news\r\nBcc: evil@example.com",
        to=recipient(name="Mallory\nX-Evil: 1"),
    )
    msg = parse(data)
    assert "Bcc" not in msg
    assert "X-Evil" not in msg
    assert msg["Subject"] == "Weekly news Bcc: evil@example.com"
    assert msg["To"].addresses[0].display_name == "Mallory X-Evil: 1"
    assert not any(line.startswith((b"Bcc:", b"X-Evil:")) for line in data.split(b"\r\n"))


@pytest.mark.parametrize(
    "changes",
    [
        {"list_id": "Daily\r\nBcc: evil@example.com <daily.example.org>"},
        {"extra_headers": {"X-Tag": "a\r\nBcc: evil@example.com"}},
        {"to": recipient(name="\r\n\r\nBcc: evil@example.com")},
        {"rendered_subject": "\nBcc: evil@example.com\n\nbody"},
        {"rendered_subject": "a\u2028Bcc: evil@example.com\x85X-Evil: 1\x00\x0b\x1b"},
    ],
)
def test_no_header_value_can_start_a_header(changes: dict[str, Any]) -> None:
    data = build(**changes)
    msg = parse(data)
    assert "Bcc" not in msg and "X-Evil" not in msg
    assert not any(line.startswith((b"Bcc:", b"X-Evil:")) for line in data.split(b"\r\n"))
    assert len(list(msg.iter_parts())) == 2


@pytest.mark.slow
@given(subject=st.text(max_size=300), name=st.text(max_size=120), tag=st.text(max_size=120))
def test_property_no_text_reaches_a_header_but_its_own(subject: str, name: str, tag: str) -> None:
    data = build(rendered_subject=subject, to=recipient(name=name), extra_headers={"X-Tag": tag})
    msg = parse(data)
    assert msg.keys() == [
        "From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Id",
        "List-Unsubscribe", "List-Unsubscribe-Post", "X-Tag", "MIME-Version", "Content-Type",
    ]
    assert msg["Subject"] == header_text(subject)
    assert msg["X-Tag"] == header_text(tag)
    assert msg["To"].addresses[0].addr_spec == "reader@example.org"


@pytest.mark.parametrize(
    "changes",
    [
        {"to": recipient(address="reader@example.org\r\nBcc: evil@example.com")},
        {"unsubscribe_url": UNSUBSCRIBE + "\r\nBcc: evil@example.com"},
        {"unsubscribe_mailto": "u@example.org\r\nBcc: evil@example.com"},
        {"message_id": "<a@example.org>\r\nBcc: evil@example.com"},
        {"sender": "War in Context\r\nBcc: evil@example.com <news@example.org>"},
        {"reply_to": "Editor\nBcc: evil@example.com <editor@example.org>"},
    ],
)
def test_injection_into_an_address_url_or_id_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        build(**changes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a\r\nb", "a b"),
        ("a\n\n\nb", "a b"),
        ("  \tpadded\r\n ", "padded"),
        ("a\x00b\x7fc\x85d\u2028e\u2029f", "a b c d e f"),
        ("keeps  two spaces", "keeps  two spaces"),
        ("Søren 日本語", "Søren 日本語"),
    ],
)
def test_header_text_folds_control_characters(value: str, expected: str) -> None:
    assert header_text(value) == expected
    assert len(expected.splitlines()) <= 1


# --- headers written verbatim --------------------------------------------------


def test_a_long_unsubscribe_url_is_never_encoded() -> None:
    url = "https://example.org/unsubscribe/v1." + "A" * 400
    data = build(unsubscribe_url=url)
    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:".encode() in data
    assert parse(data)["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")


def test_a_mailto_prefix_and_display_name_are_accepted() -> None:
    for mailto in ("mailto:unsubscribe@example.org", "Leave <unsubscribe@example.org>"):
        msg = parse(build(unsubscribe_mailto=mailto))
        assert msg["List-Unsubscribe"].endswith(", <mailto:unsubscribe@example.org?subject=unsubscribe>")


def test_a_long_list_id_is_never_encoded() -> None:
    ident = "a-rather-long-list-name-for-testing." + "sub." * 12 + "example.org"
    data = build(list_id=f"A list whose title alone nearly fills the line <{ident}>")
    assert f" <{ident}>\r\n".encode() in data
    assert parse(data)["List-Id"] == f"A list whose title alone nearly fills the line <{ident}>"


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Daily digest", "Daily digest <daily.example.org>"),
        ("News, views & more", '"News, views & more" <daily.example.org>'),
        ('Say "hi" <now>', '"Say \\"hi\\" <now>" <daily.example.org>'),
        ('"quoted" and "more"', '"\\"quoted\\" and \\"more\\"" <daily.example.org>'),
        ("Dagligt nyhedsbrev fra Søren, med 日本語", "Dagligt nyhedsbrev fra Søren, med 日本語 <daily.example.org>"),
        ("", "<daily.example.org>"),
    ],
)
def test_list_id_round_trips(title: str, shown: str) -> None:
    value = list_id("daily", title, "example.org")
    assert value == shown
    msg = parse(build(list_id=value))
    assert msg["List-Id"] == shown


def test_an_unquoted_list_title_with_specials_is_quoted() -> None:
    msg = parse(build(list_id="News, views & more <daily.example.org>"))
    assert msg["List-Id"] == '"News, views & more" <daily.example.org>'


def test_list_id_uses_the_ascii_host() -> None:
    assert list_id("weekly_news", "Weekly", "Bücher.Example") == "Weekly <weekly_news.xn--bcher-kva.example>"


@pytest.mark.parametrize(("name", "host"), [("bad name", "example.org"), ("daily", "exa mple.org"), ("daily", "")])
def test_list_id_refuses_what_is_not_a_list_id(name: str, host: str) -> None:
    with pytest.raises(MessageError, match="List-Id"):
        list_id(name, "Title", host)


# --- refused input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"date": NOW.replace(tzinfo=None)}, "Date"),
        ({"message_id": "no-angle-brackets@example.org"}, "Message-ID"),
        ({"message_id": "<two words@example.org>"}, "Message-ID"),
        ({"to": recipient(address="not-an-address")}, "To"),
        ({"to": recipient(address="")}, "To"),
        ({"to": recipient(address="a@b.c extra")}, "To"),
        ({"sender": "nobody"}, "From"),
        ({"reply_to": "<>"}, "Reply-To"),
        ({"list_id": "no id here"}, "List-Id"),
        ({"list_id": "Title <two words>"}, "List-Id"),
        ({"unsubscribe_url": "javascript:alert(1)"}, "List-Unsubscribe"),
        ({"unsubscribe_url": "/unsubscribe/relative"}, "List-Unsubscribe"),
        ({"unsubscribe_url": "https://example.org/a>b"}, "List-Unsubscribe"),
        ({"unsubscribe_url": "https://example.org/ü"}, "List-Unsubscribe"),
        ({"unsubscribe_url": "https://example.org/" + "a" * 1000}, "List-Unsubscribe"),
        ({"unsubscribe_mailto": "not an address"}, "List-Unsubscribe"),
        ({"extra_headers": {"Bcc": "evil@example.com"}}, "Bcc"),
        ({"extra_headers": {"from": "evil@example.com"}}, "from"),
        ({"extra_headers": {"Content-Type": "text/plain"}}, "Content-Type"),
        ({"extra_headers": {"X Bad": "1"}}, "X Bad"),
        ({"extra_headers": {"X:Bad": "1"}}, "X:Bad"),
        ({"extra_headers": {"X-Ünicode": "1"}}, "X-Ünicode"),
    ],
)
def test_unusable_input_is_a_message_error_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageError, match=field) as info:
        build(**changes)
    assert isinstance(info.value, PublisherError)


# --- Message-ID --------------------------------------------------------------


def test_make_message_id_is_unique_per_call_on_the_domain() -> None:
    first = make_message_id("example.org", "daily", "7", "reader@example.org")
    second = make_message_id("example.org", "daily", "7", "reader@example.org")
    other = make_message_id("example.org", "daily", "7", "someone@example.org")
    assert first != second
    assert first.startswith("<") and first.endswith("@example.org>")
    assert first.split(".")[0] == second.split(".")[0] != other.split(".")[0]
    assert parse(build(message_id=first))["Message-ID"] == first


def test_make_message_id_uses_the_ascii_domain() -> None:
    assert make_message_id("Bücher.Example", "x").endswith("@xn--bcher-kva.example>")
    with pytest.raises(MessageError, match="Message-ID"):
        make_message_id("not a domain")


# --- DKIM --------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    """A fresh 2048-bit key: (PEM private key, DNS TXT record)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def verify(signed: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return record

    return dkim.verify(signed, dnsfunc=dns)


def sign(data: bytes, key: bytes) -> bytes:
    return dkim_sign(data, domain="example.org", selector="mail", private_key=key)


def test_dkim_signature_verifies(rsa_key: tuple[bytes, bytes]) -> None:
    key, record = rsa_key
    data = build(rendered_subject="Søren's 日本語 digest", html="<p>" + "x" * 50_000 + "</p>")
    signed = sign(data, key)
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;")
    assert signed.endswith(data)
    assert verify(signed, record) is True
    msg = parse(signed)
    signed_headers = {h.strip() for h in msg["DKIM-Signature"].split("h=")[1].split(";")[0].split(":")}
    assert {"from", "to", "subject", "list-unsubscribe", "list-unsubscribe-post", "reply-to"} <= signed_headers


def test_dkim_key_with_crlf_line_endings_signs(rsa_key: tuple[bytes, bytes]) -> None:
    key, record = rsa_key
    assert verify(sign(build(), key.replace(b"\n", b"\r\n")), record) is True


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Today's posts", b"Today's pests"),
        (b"Subject: War in Context", b"Subject: War in Kontext"),
        (b"List-Unsubscribe: <https://example.org/", b"List-Unsubscribe: <https://evil.example/"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
    ],
)
def test_altering_a_signed_message_fails_verification(rsa_key: tuple[bytes, bytes], old: bytes, new: bytes) -> None:
    key, record = rsa_key
    signed = sign(build(), key)
    assert old in signed
    assert verify(signed.replace(old, new, 1), record) is False


def test_adding_a_reply_to_after_signing_fails_verification(rsa_key: tuple[bytes, bytes]) -> None:
    key, record = rsa_key
    signed = sign(build(reply_to=None), key)
    head, body = signed.split(b"\r\n\r\n", 1)
    assert verify(head + b"\r\nReply-To: thief@evil.example\r\n\r\n" + body, record) is False


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"not a key",
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    ],
)
def test_an_unusable_dkim_key_is_a_message_error(key: bytes) -> None:
    with pytest.raises(MessageError, match=r"mail\._domainkey\.example\.org"):
        sign(build(), key)


@pytest.mark.parametrize(
    ("domain", "selector"),
    [("example.org", "sélecteur"), ("example.org; x=1", "mail"), ("example.org", "mail b"), ("", "mail")],
)
def test_an_unusable_dkim_domain_or_selector_is_a_message_error(
    rsa_key: tuple[bytes, bytes], domain: str, selector: str
) -> None:
    with pytest.raises(MessageError, match="DNS names"):
        dkim_sign(build(), domain=domain, selector=selector, private_key=rsa_key[0])
