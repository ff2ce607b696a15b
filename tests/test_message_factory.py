"""MessageFactory gives the same bytes as the EmailMessage-based reference builder.

The factory encodes an issue's parts once and only the lines holding a
placeholder per recipient; these tests hold it to ``build_message_reference``
byte for byte: over generated recipients (quotes, non-ASCII, names that
fold, long addresses), generated bodies, and the sample site's real digest.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta, timezone
from email import quoprimime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from publisher.config import load_config
from publisher.content import load_posts, publish
from publisher.mail.digest import IssueMessages, next_issue, recipient
from publisher.mail.message import MessageError, MessageFactory, build_message
from publisher.mail.mime import SmtpData, dot_stuffed
from publisher.model import Personal, RenderedIssue
from publisher.mail.render import PLACEHOLDER, personalize, placeholder_values, render_issue
from publisher.state.store import StateStore

from .conftest import NOW
from .helpers import build_message_reference

SENDER = "War in Context <news@example.org>"
LIST_ID = "Daily digest <daily.example.org>"
UNSUBSCRIBE = "https://example.org/unsubscribe/v1.cmVhZGVy.ZGFpbHk.sig"

# Bodies with placeholders where the digest templates put them: in the middle
# of a line, at its start and end, in an attribute, on a long line that
# quoted-printable must wrap, and on a last line without a line break.
HTML = (
    "<!DOCTYPE html>\n<html><body>\n"
    '<p style="margin:0">Hello %%PUB:name:7468657265%%,</p>\n'
    "%%PUB:name%%\n"
    '<a href="%%PUB:unsubscribe_url%%" style="color:#333;text-decoration:underline">Unsubscribe</a> '
    + "x" * 150
    + " %%PUB:email%% Søren 日本語 =3D \t\n"
    ". a line that starts with a dot\n"
    "</body></html>\n"
    "<p>%%PUB:view_url%%</p>"
)
TEXT = "Hello %%PUB:name:7468657265%%,\n\nSent to: %%PUB:email%%\nUnsubscribe: %%PUB:unsubscribe_url%%\n"


def personal(name: str = "Reader", email: str = "reader@example.org") -> Personal:
    return Personal(
        email=email,
        name=name,
        unsubscribe_url=UNSUBSCRIBE,
        preferences_url="https://example.org/preferences/x",
        view_url="https://example.org/issues/daily/1/",
    )


def filled(html: str, text: str, who: Personal) -> tuple[str, str]:
    """The parts as the renderer personalises them for the reference builder."""
    return personalize(RenderedIssue("subject", "", html, text, 0, 0), who)


def reference(who: Personal, *, html: str = HTML, text: str = TEXT, **changes) -> bytes:
    arguments = dict(
        sender=SENDER,
        reply_to="Editor <editor@example.org>",
        list_id=LIST_ID,
        unsubscribe_mailto="unsubscribe@example.org",
        message_id="<0123abcd.4567@example.org>",
        date=NOW,
    )
    arguments.update(changes)
    html, text = filled(html, text, who)
    return build_message_reference(
        "War in Context: Hello and 2 more",
        html,
        text,
        to=who,
        unsubscribe_url=who.unsubscribe_url,
        **arguments,
    )


def factory(*, html: str = HTML, text: str = TEXT, **changes) -> MessageFactory:
    arguments = dict(
        sender=SENDER,
        reply_to="Editor <editor@example.org>",
        list_id=LIST_ID,
        unsubscribe_mailto="unsubscribe@example.org",
    )
    arguments.update(changes)
    return MessageFactory("War in Context: Hello and 2 more", html, text, slots=PLACEHOLDER, **arguments)


def built(made: MessageFactory, who: Personal, *, message_id: str = "<0123abcd.4567@example.org>", date=NOW) -> bytes:
    return made.build(
        to=who,
        unsubscribe_url=who.unsubscribe_url,
        message_id=message_id,
        date=date,
        html_values=placeholder_values(made.html_slots, who, html=True),
        text_values=placeholder_values(made.text_slots, who, html=False),
    )


# --- quoted-printable is line-local ------------------------------------------------

LINE_CHARS = st.characters(codec="utf-8", exclude_characters="\r\n")


@given(st.lists(st.text(LINE_CHARS, max_size=300), max_size=12))
@example(["x" * 74 + " ", "y" * 75 + "\t", "z" * 73 + "==", "." + "=" * 80])
def test_quoted_printable_of_a_body_is_its_lines_encoded_one_by_one(lines: list[str]) -> None:
    whole = "".join(line + "\n" for line in lines).encode("utf-8").decode("latin-1")
    pieces = [(line + "\n").encode("utf-8").decode("latin-1") for line in lines]
    assert quoprimime.body_encode(whole, 76) == "".join(quoprimime.body_encode(p, 76) for p in pieces)


# Characters that make quoted-printable wrap in every way it can: escapes
# near the 75th column, whitespace at the end of a line, multi-byte UTF-8.
WRAP_CHARS = st.sampled_from(["x", "=", " ", "\t", "é", "日", ".", '"', "\x7f"])


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(prefix=st.text(WRAP_CHARS, max_size=400), value=st.text(WRAP_CHARS, max_size=120), after=st.text(WRAP_CHARS, max_size=200))
def test_a_slot_after_a_long_prefix_wraps_as_the_whole_line_would(prefix: str, value: str, after: str) -> None:
    made = MessageFactory(
        "s", prefix + "%%PUB:name%%" + after + "\n", "t", slots=PLACEHOLDER,
        sender=SENDER, reply_to=None, list_id=LIST_ID, unsubscribe_mailto=None,
    )
    out: list[bytes] = []
    made._html.encode({"%%PUB:name%%": value}, out)
    expected = quoprimime.body_encode((prefix + value + after + "\n").encode("utf-8").decode("latin-1"), 76, eol="\r\n")
    assert b"".join(out) == expected.encode("ascii")


# --- the same bytes as the reference -------------------------------------------------

NAMES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            'Ann "Nan" O\'Brien',
            "Søren Kierkegaard",
            "日本語 の 名前",
            "Smith, John",
            "a" * 200,
            "Dr. Ünïcödé " * 8,
            "=?utf-8?q?not-an-encoded-word?=",
            "back\\slash",
            "line\nbreak\r\nand\ttab",
        ]
    ),
)
LOCAL = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,20}){0,3}", fullmatch=True)
DOMAIN = st.from_regex(r"[a-z0-9-]{1,30}(\.[a-z0-9-]{1,30}){0,4}", fullmatch=True)
ADDRESSES = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAIN),
    st.sampled_from(
        [
            "reader@example.org",
            '"quoted local"@example.org',
            "reader@bücher.example",
            "a" * 64 + "@" + "b" * 60 + ".example.org",
            "first.last+tag@sub.domain.example.co.uk",
        ]
    ),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(name=NAMES, address=ADDRESSES)
def test_factory_bytes_equal_the_reference_for_any_recipient(name: str, address: str) -> None:
    who = personal(name, address)
    try:
        expected = reference(who)
    except MessageError as exc:
        with pytest.raises(MessageError) as info:
            built(factory(), who)
        assert str(info.value).split(":")[0] == str(exc).split(":")[0]
        return
    assert built(factory(), who) == expected


BODY_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
TOKENS = st.sampled_from(["%%PUB:name%%", "%%PUB:email%%", "%%PUB:name:7468657265%%", "%%PUB:view_url%%"])
BODIES = st.lists(st.one_of(st.text(BODY_CHARS, max_size=120), TOKENS, st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "."])), max_size=25).map("".join)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(html=BODIES, text=BODIES, name=st.one_of(NAMES, st.sampled_from(["ends in CR\r", "\nstarts with LF", "\r"])))
@example(html="", text="", name="")
@example(html="%%PUB:name%%", text="a\n%%PUB:name%%", name="")
@example(html="%%PUB:name%%", text="a\n%%PUB:name%%", name="ends\n")
@example(html="a%%PUB:name%%\nb", text="%%PUB:name%%\n", name="x\r")
def test_factory_bytes_equal_the_reference_for_any_body(html: str, text: str, name: str) -> None:
    who = personal(name)
    assert built(factory(html=html, text=text), who) == reference(who, html=html, text=text)


DOTTED = st.lists(st.one_of(BODIES, st.sampled_from([".", "\n.", "\r\n.", ".%%PUB:name%%", "\n%%PUB:name%%"])), max_size=6).map("".join)


@settings(max_examples=200, deadline=None)
@given(html=DOTTED, text=DOTTED, name=st.one_of(NAMES, st.sampled_from([".", ".\n.", "a\n.b", "\r\n..", "x" * 70 + "."])))
@example(html=".%%PUB:name%%\n.", text="%%PUB:name%%", name=".")
def test_a_message_built_stuffed_is_the_message_dot_stuffed(html: str, text: str, name: str) -> None:
    made, who = factory(html=html, text=text), personal(name)
    wire = made.build(
        to=who, unsubscribe_url=who.unsubscribe_url, message_id="<0123abcd.4567@example.org>", date=NOW,
        html_values=placeholder_values(made.html_slots, who, html=True),
        text_values=placeholder_values(made.text_slots, who, html=False),
        stuff=True,
    )
    assert type(wire) is SmtpData
    assert wire == dot_stuffed(built(made, who))


@pytest.mark.parametrize("host", ["x.org", "example.org", "mail.example.org", "news.very-long-domain-name.example.com", "h" * 900 + ".org"])
def test_message_ids_of_every_length_are_written_as_the_reference_writes_them(host: str) -> None:
    made = factory()
    for local in ("a", "0123456789abcdef.0123456789abcdef0123456789abcdef", "x" * 40):
        message_id = f"<{local}@{host}>"
        assert built(made, personal(), message_id=message_id) == reference(personal(), message_id=message_id)


def test_dates_in_any_timezone_and_second_are_written_as_the_reference_writes_them() -> None:
    made = factory()
    for offset in (0, 1, 59, 60, 3600, 86400 * 40):
        for zone in (timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))):
            date = (NOW + timedelta(seconds=offset, microseconds=offset)).astimezone(zone)
            assert built(made, personal(), date=date) == reference(personal(), date=date)


@pytest.mark.parametrize(
    "changes",
    [
        {"reply_to": None, "unsubscribe_mailto": None},
        {"extra_headers": {"X-Publisher-Issue": "daily/7", "Precedence": "bulk"}},
        {"sender": "Søren Kierkegaard's Blog <news@bücher.example>"},
        {"list_id": '"Daily, digest" <daily.example.org>'},
    ],
)
def test_optional_headers_are_written_as_the_reference_writes_them(changes: dict) -> None:
    assert built(factory(**changes), personal("Ann")) == reference(personal("Ann"), **changes)


def test_build_message_is_the_factory_and_equals_the_reference() -> None:
    who = personal("Ann")
    arguments = dict(
        sender=SENDER, to=who, reply_to=None, list_id=LIST_ID, unsubscribe_url=UNSUBSCRIBE,
        unsubscribe_mailto=None, message_id="<a.b@example.org>", date=NOW,
    )
    html, text = "<p>Søren</p>\n" * 50, "x " * 400
    assert build_message("Hi", html, text, **arguments) == build_message_reference("Hi", html, text, **arguments)


def test_one_factory_builds_for_many_recipients_without_leaking_between_them() -> None:
    made = factory()
    people = [personal(f"Reader {n} “Ünïcode” " * (n % 4), f"reader{n}@example.org") for n in range(200)]
    first = [built(made, who, message_id=f"<{n}.x@example.org>") for n, who in enumerate(people)]
    again = [built(made, people[n], message_id=f"<{n}.x@example.org>") for n in reversed(range(len(people)))]
    assert first == again[::-1]
    for n in (0, 1, 7, 199):
        assert first[n] == reference(people[n], message_id=f"<{n}.x@example.org>")


def test_a_bad_recipient_is_a_message_error_and_the_factory_goes_on() -> None:
    made = factory()
    with pytest.raises(MessageError, match="To"):
        built(made, personal(email="not-an-address"))
    with pytest.raises(MessageError, match="List-Unsubscribe"):
        made.build(to=personal(), unsubscribe_url="javascript:x", message_id="<a@b>", date=NOW)
    assert built(made, personal()) == reference(personal())


# --- the sample site's real digest ------------------------------------------------------


def _sample_issue(site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "a-test-secret-that-is-long-enough")
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        with store.transaction():
            published, _ = publish(load_posts(config).posts, store=store.posts, now=NOW, config=config)
        issue = next_issue(published, config.lists["daily"], store, now=NOW)
    finally:
        store.close()
    assert issue is not None
    return config, issue, render_issue(issue, published.info, templates=config.mail.templates / "email")


@pytest.mark.slow
def test_the_sample_digest_is_byte_identical_for_many_recipients(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, issue, rendered = _sample_issue(sample_site, monkeypatch)
    messages = IssueMessages(config, issue, rendered)
    assert messages.factory.html_slots and messages.factory.text_slots  # the digest is personalised
    names = ["", "Ann", 'Ann "Nan" O\'Brien', "Søren Kierkegaard", "日本語", "<b>&amp;</b>", "x" * 120]
    for n in range(120):
        who = recipient(config, issue, f"reader.{n}+tag@sub{n}.example.net", names[n % len(names)] + (f" {n}" if n % 3 else ""))
        message_id = messages.message_id(who.email)
        now = NOW + timedelta(seconds=n // 7)
        html, text = personalize(rendered, who)
        host = "example.org"
        expected = build_message_reference(
            rendered.subject, html, text,
            sender=config.mail.sender, to=who, reply_to=config.mail.reply_to,
            list_id=f"{issue.list.title} <{issue.list.name}.{host}>",
            unsubscribe_url=who.unsubscribe_url, unsubscribe_mailto=config.mail.unsubscribe_mailto,
            message_id=message_id, date=now,
        )
        assert messages.compose(who, now=now, message_id=message_id) == expected, who


def test_placeholders_never_reach_a_message(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, issue, rendered = _sample_issue(sample_site, monkeypatch)
    messages = IssueMessages(config, issue, rendered)
    data = messages.compose(messages.recipient("a@example.net", "Ann"), now=NOW)
    message = email.message_from_bytes(data, policy=email.policy.default)
    for part in message.iter_parts():
        assert "%%PUB" not in part.get_content()


def test_the_sample_digest_composed_for_smtp_is_it_dot_stuffed_signed_or_not(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    config, issue, rendered = _sample_issue(sample_site, monkeypatch)
    plain = IssueMessages(config, issue, rendered)
    signed = IssueMessages(config, issue, rendered)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed._dkim = type("Dkim", (), {"domain": "example.org", "selector": "news"})()
    signed._dkim_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for messages in (plain, signed):
        for name in ("Ann", ".", "x\n.y"):
            who = messages.recipient("reader@example.net", name)
            message_id = messages.message_id(who.email)
            raw = messages.compose(who, now=NOW, message_id=message_id)
            wire = messages.compose(who, now=NOW, message_id=message_id, stuff=True)
            assert type(wire) is SmtpData
            if messages is plain:
                assert wire == dot_stuffed(raw)
            else:  # a new signature each time (its t=): the same message around it
                assert raw.startswith(b"DKIM-Signature:") and wire.startswith(b"DKIM-Signature:")
                assert wire.endswith(dot_stuffed(raw.split(b"\r\nFrom: ", 1)[1]))
