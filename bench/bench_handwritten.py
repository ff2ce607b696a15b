"""Hand-written for speed: each piece against the plain library call it stands for.

Three places keep code of their own where a library call would do the same
job, because the call costs more per recipient. Each is timed here against
that call, in the same run, on the benchmarks' digest (7 posts in full):

- the message: ``MessageFactory`` (``digest.IssueMessages.compose``) per
  recipient vs ``email.message.EmailMessage`` built and serialised with
  ``as_bytes()`` under ``policy.SMTP`` (``tests.helpers.build_message_reference``,
  the same bytes; ``render.personalize`` fills its parts);
- quoted-printable: the HTML part per recipient by ``mime.BodyTemplate``
  (only the lines holding a placeholder are encoded) vs the whole
  personalised part by ``email.quoprimime.body_encode`` (what EmailMessage
  runs; the same bytes) and by ``quopri.encodestring`` (binascii's encoder
  in C; other line breaks, so only its time compares);
- SMTP: ``SmtpConnection.send`` (MAIL, RCPT and DATA pipelined, dot-stuffing
  by ``bytes.replace``) vs ``smtplib.SMTP.sendmail``, one connection each,
  the same messages, to postfix's smtp-sink on 127.0.0.1 (rounds alternate;
  the best of each counts). Loopback answers at once: across a network,
  where a round trip costs milliseconds, pipelining saves more.

    .venv/bin/python -m bench handwritten
"""

from __future__ import annotations

import contextlib
import quopri
import smtplib
import tempfile
import time
from email import quoprimime
from pathlib import Path

from bench.common import DIGEST_POSTS, NOW, heading, line, open_site, size, timed, verdict, write_site

SENDER = "news@example.org"
NAMES = ("Reader {n}", "Ann O'Brien {n}", "Søren Ek {n}", "", "李华 {n}", '"Doc" Smith {n}')


def _loop(fn, count: int) -> float:
    """Seconds for ``fn(0)`` … ``fn(count - 1)``, their results let go at once."""
    start = time.perf_counter()
    for n in range(count):
        fn(n)
    return time.perf_counter() - start


def _sink():
    """A running smtp-sink context, or None when it cannot be had."""
    from bench.sink import SmtpSink

    try:
        return SmtpSink()
    except Exception as exc:  # no postfix package, no sudo, …
        line("smtp-sink", f"not available ({exc}): the SMTP comparison is skipped")
        return None


def run() -> None:
    recipients = size(2_000, 10_000)
    sample = size(100, 400)
    heading(f"hand-written code vs the plain library call: {recipients:,} recipients, library on {sample}")
    sink = _sink()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-handwritten-") as tmp:
        port = stack.enter_context(sink).port if sink is not None else None
        config_path = write_site(Path(tmp) / "site", posts=40, digest_posts=DIGEST_POSTS, smtp_port=port, connections=1)
        config, issue, rendered, people = _issue(config_path, recipients)
        _messages(config, issue, rendered, people, sample)
        _quoted_printable(rendered, people, sample)
        if sink is not None:
            _smtp(config, issue, rendered, people)


def _issue(config_path: Path, recipients: int):
    from publisher.content import load_posts, publish
    from publisher.mail.digest import next_issue, recipient
    from publisher.mail.render import render_issue

    config, store = open_site(config_path)
    try:
        with store.transaction():
            site, _ = publish(load_posts(config).posts, store=store.posts, now=NOW, config=config)
        issue = next_issue(site, config.lists["daily"], store, now=NOW)
    finally:
        store.close()
    assert issue is not None
    rendered = render_issue(issue, site.info, templates=config.mail.templates / "email")
    # Signed links made beforehand: both sides are given the same recipients.
    people = [
        recipient(config, issue, f"reader{n}@example.net", NAMES[n % len(NAMES)].format(n=n))
        for n in range(recipients)
    ]
    line("digest HTML (rendered once, CSS inlined)", f"{len(rendered.html.encode()):,} bytes")
    return config, issue, rendered, people


def _messages(config, issue, rendered, people, sample: int) -> None:
    from publisher.mail.digest import IssueMessages
    from publisher.mail.message import list_id
    from publisher.mail.render import personalize
    from tests.helpers import build_message_reference

    messages = IssueMessages(config, issue, rendered)
    ids = [f"<{n:016x}.bench@example.org>" for n in range(len(people))]

    def plain(n: int) -> bytes:
        personal = people[n]
        html, text = personalize(rendered, personal)
        return build_message_reference(
            rendered.subject, html, text,
            sender=config.mail.sender, to=personal, reply_to=config.mail.reply_to,
            list_id=list_id(issue.list.name, issue.list.title, messages.host),
            unsubscribe_url=personal.unsubscribe_url, unsubscribe_mailto=config.mail.unsubscribe_mailto,
            message_id=ids[n], date=NOW,
        )

    def ours(n: int) -> bytes:
        return messages.compose(people[n], now=NOW, message_id=ids[n])

    plain_seconds, expected = timed(lambda: [plain(n) for n in range(sample)])
    ours_seconds = _loop(ours, len(people))
    identical = sum(ours(n) == expected[n] for n in range(sample))
    plain_each, ours_each = plain_seconds / sample, ours_seconds / len(people)
    line("EmailMessage + policy.SMTP as_bytes(), per recipient", f"{plain_each * 1e6:,.0f} µs")
    line("MessageFactory.build (IssueMessages.compose), per recipient", f"{ours_each * 1e6:,.0f} µs")
    line("bytes identical (sample)", f"{identical}/{sample}")
    ratio = plain_each / ours_each
    verdict(
        "message per recipient vs EmailMessage",
        f"{ours_each * 1e6:,.0f} µs vs {plain_each * 1e6:,.0f} µs, {identical}/{sample} identical",
        ratio, "> 1", ratio > 1 and identical == sample,
    )


def _quoted_printable(rendered, people, sample: int) -> None:
    from publisher.mail.mime import BodyTemplate, lf_lines
    from publisher.mail.render import PLACEHOLDER, personalize, placeholder_values

    part = BodyTemplate(rendered.html, PLACEHOLDER, "text/html")
    values = [placeholder_values(part.slots, personal, html=True) for personal in people]
    # The library's input made beforehand: the filled part, as the email package holds it.
    filled = []
    for personal in people[:sample]:
        html = lf_lines(personalize(rendered, personal)[0])
        filled.append(html if html.endswith("\n") else html + "\n")
    latin = [html.encode("utf-8").decode("latin-1") for html in filled]
    raw = [html.encode("utf-8") for html in filled]

    def ours(n: int) -> bytes:
        out: list[bytes] = []
        part.encode(values[n], out)
        return b"".join(out)

    email_seconds, expected = timed(lambda: [quoprimime.body_encode(data, 76, eol="\r\n") for data in latin])
    quopri_seconds = _loop(lambda n: quopri.encodestring(raw[n]), sample)
    ours_seconds = _loop(ours, len(people))
    identical = sum(ours(n) == expected[n].encode("ascii") for n in range(sample))
    email_each, quopri_each = email_seconds / sample, quopri_seconds / sample
    ours_each = ours_seconds / len(people)
    line("quoprimime.body_encode of the whole HTML part, per recipient", f"{email_each * 1e6:,.0f} µs")
    line("quopri.encodestring (binascii, C) of the same, per recipient", f"{quopri_each * 1e6:,.0f} µs")
    line("BodyTemplate.encode (lines with a placeholder), per recipient", f"{ours_each * 1e6:,.1f} µs")
    line("bytes identical to body_encode (sample)", f"{identical}/{sample}")
    verdict(
        "quoted-printable vs quoprimime.body_encode",
        f"{ours_each * 1e6:,.1f} µs vs {email_each * 1e6:,.0f} µs, {identical}/{sample} identical",
        email_each / ours_each, "> 1", email_each > ours_each and identical == sample,
    )
    verdict(
        "quoted-printable vs quopri.encodestring (C)",
        f"{ours_each * 1e6:,.1f} µs vs {quopri_each * 1e6:,.0f} µs",
        quopri_each / ours_each, "> 1", quopri_each > ours_each,
    )


def _smtp(config, issue, rendered, people) -> None:
    from publisher.mail.digest import IssueMessages
    from publisher.mail.transports import SmtpTransport

    total = size(1_000, 5_000)
    rounds = 3
    messages = IssueMessages(config, issue, rendered)
    pool = [(p.email, messages.compose(p, now=NOW)) for p in people[:200]]
    settings = config.mail.smtp
    host, port = settings.host, settings.port

    def ours() -> float:
        connection = SmtpTransport(settings).connect()
        try:
            start = time.perf_counter()
            for n in range(total):
                rcpt, data = pool[n % len(pool)]
                connection.send(SENDER, rcpt, data)
            return time.perf_counter() - start
        finally:
            connection.close()

    def plain() -> float:
        with smtplib.SMTP(host, port) as session:
            session.ehlo()
            start = time.perf_counter()
            for n in range(total):
                rcpt, data = pool[n % len(pool)]
                session.sendmail(SENDER, [rcpt], data)
            return time.perf_counter() - start

    ours_best = plain_best = float("inf")
    for _ in range(rounds):  # alternating, so a busy moment falls on both
        plain_best = min(plain_best, plain())
        ours_best = min(ours_best, ours())
    ours_rate, plain_rate = total / ours_best, total / plain_best
    line(f"smtplib sendmail, one connection, {total:,} messages (best of {rounds})", f"{plain_rate:,.0f} msgs/s")
    line(f"SmtpConnection.send, pipelined, same messages (best of {rounds})", f"{ours_rate:,.0f} msgs/s")
    ratio = ours_rate / plain_rate
    verdict(
        "SMTP send vs smtplib sendmail (loopback)",
        f"{ours_rate:,.0f} vs {plain_rate:,.0f} msgs/s", ratio, "> 1", ratio > 1,
    )


if __name__ == "__main__":
    run()
