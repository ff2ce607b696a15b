"""Target 1: personalised messages, per issue prepared once vs the naive pipeline.

Naive (the baseline, on a sample): per recipient, Jinja2 renders the digest,
premailer inlines its CSS, the placeholders are filled and
``email.message.EmailMessage`` builds and serialises the MIME message
(``build_message_reference``). Publisher: the issue is rendered and inlined
once, ``IssueMessages`` prepares what every recipient shares, then each
recipient costs its signed links, a Message-ID and ``compose``. Both make
complete, ready-to-send bytes; on the sample they must be identical.

    .venv/bin/python -m bench.bench_messages
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import DIGEST_POSTS, NOW, heading, line, open_site, size, timed, verdict, write_site


def run() -> None:
    recipients = size(20_000, 100_000)
    sample = size(40, 200)
    heading(f"1. personalised messages: {recipients:,} recipients, naive pipeline on a sample of {sample}")

    from publisher.content import load_posts, publish
    from publisher.mail.digest import IssueMessages, next_issue, recipient
    from publisher.mail.message import list_id
    from tests.helpers import build_message_reference
    from publisher.mail.render import personalize, render_issue

    with tempfile.TemporaryDirectory(prefix="bench-messages-") as tmp:
        config, store = open_site(write_site(Path(tmp) / "site", posts=40, digest_posts=DIGEST_POSTS))
        with store.transaction():
            site, _ = publish(load_posts(config).posts, store=store.posts, now=NOW, config=config)
        issue = next_issue(site, config.lists["daily"], store, now=NOW)
        store.close()
        assert issue is not None
        templates = config.mail.templates / "email"
        host = "example.org"
        people = [(f"reader{n}@example.net", ("Reader {n}", "Ann O'Brien", "Søren Ek", "", "李华")[n % 5].format(n=n)) for n in range(recipients)]

        def naive(email: str, name: str, message_id: str) -> bytes:
            rendered = render_issue(issue, site.info, templates=templates)  # Jinja2 + premailer
            personal = recipient(config, issue, email, name)
            html, text = personalize(rendered, personal)
            return build_message_reference(
                rendered.subject, html, text,
                sender=config.mail.sender, to=personal, reply_to=config.mail.reply_to,
                list_id=list_id(issue.list.name, issue.list.title, host),
                unsubscribe_url=personal.unsubscribe_url, unsubscribe_mailto=config.mail.unsubscribe_mailto,
                message_id=message_id, date=NOW,
            )

        ids = [f"<{n:016x}.bench@{host}>" for n in range(sample)]
        naive_seconds, naive_bytes = timed(lambda: [naive(e, n, ids[i]) for i, (e, n) in enumerate(people[:sample])])
        naive_rate = sample / naive_seconds

        # Publisher: render once, prepare once, then one compose per recipient.
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        rendered = render_issue(issue, site.info, templates=templates)
        messages = IssueMessages(config, issue, rendered)
        setup = time.perf_counter() - wall_start
        total_bytes = 0
        for email, name in people:
            personal = messages.recipient(email, name)
            data = messages.compose(personal, now=NOW, message_id=messages.message_id(email))
            total_bytes += len(data)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        fast_rate = recipients / wall

        identical = sum(
            messages.compose(messages.recipient(e, n), now=NOW, message_id=ids[i]) == naive_bytes[i]
            for i, (e, n) in enumerate(people[:sample])
        )

        line("digest HTML (rendered once, CSS inlined)", f"{len(rendered.html.encode()):,} bytes")
        line("message size (average)", f"{total_bytes / recipients:,.0f} bytes")
        line("naive: Jinja2 + premailer + EmailMessage per recipient", f"{naive_rate:,.1f} msgs/s ({naive_seconds / sample * 1e3:.1f} ms each)")
        line("publisher: render + prepare once (included below)", f"{setup * 1e3:.0f} ms")
        line(f"publisher: {recipients:,} messages, one thread", f"{fast_rate:,.0f} msgs/s ({wall / recipients * 1e6:.0f} µs each)")
        line("  CPU time / wall time (one core)", f"{cpu:.2f} s / {wall:.2f} s")
        line("bytes identical to the naive pipeline's (sample)", f"{identical}/{sample}")
        ratio = fast_rate / naive_rate
        verdict(
            "1 personalised messages",
            f"{fast_rate:,.0f} msgs/s vs naive {naive_rate:,.1f} msgs/s, {identical}/{sample} identical",
            ratio,
            ">= 100x and >= 5,000 msgs/s, identical bytes",
            ratio >= 100 and fast_rate >= 5000 and identical == sample,
        )


if __name__ == "__main__":
    run()
