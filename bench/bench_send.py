"""Target 2: sending to postfix's smtp-sink, and target 4's send memory.

Measured in one run, against the same sink on 127.0.0.1:

- publisher: ``prepare_issue`` then ``deliver_issue`` (what ``publisher
  send`` runs) with 4 SMTP connections, every delivery committed to SQLite;
- a bare smtplib loop: 4 threads, one connection each, ``sendmail`` of
  prepared message bytes (publisher's own, made beforehand), nothing else;
- the naive pipeline, on a sample: per recipient Jinja2 + premailer +
  EmailMessage, then smtplib over one connection;
- mailmerge (PyPI), on a sample: its template holds the same rendered digest
  HTML, its CSV the same recipients; it opens one connection per message.

Memory (target 4): ``publisher send`` as a subprocess to the sink for a
large audience; its peak RSS from ``wait4``.

    .venv/bin/python -m bench.bench_send
"""

from __future__ import annotations

import csv
import shutil
import smtplib
import tempfile
import threading
from pathlib import Path

from bench.common import (
    DIGEST_POSTS,
    NOW,
    PYTHON,
    SECRET,
    SECRET_ENV,
    add_subscribers,
    heading,
    line,
    open_site,
    run_measured,
    size,
    timed,
    verdict,
    write_site,
)
from bench.sink import SmtpSink

SENDER = "news@example.org"
CONNECTIONS = 4


def _site(root: Path, port: int, subscribers: int) -> Path:
    config_path = write_site(root, posts=40, smtp_port=port, connections=CONNECTIONS, digest_posts=DIGEST_POSTS)
    _, store = open_site(config_path)  # creates the state store and its schema
    store.close()
    add_subscribers(config_path.parent / ".publisher" / "state.db", subscribers)
    return config_path


def _bare_loop(port: int, messages: list[tuple[str, bytes]], total: int) -> float:
    """Seconds for ``total`` sendmail calls over CONNECTIONS threads, cycling ``messages``."""
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port) as session:
                for n in range(index, total, CONNECTIONS):
                    rcpt, data = messages[n % len(messages)]
                    session.sendmail(SENDER, [rcpt], data)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    seconds, _ = timed(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    if errors:
        raise errors[0]
    return seconds


def _mailmerge(root: Path, port: int, html: str, people: list[tuple[str, str, object]]) -> float | None:
    """Seconds for mailmerge to send the digest to ``people``, or None if it cannot run."""
    binary = shutil.which("mailmerge", path=str(Path(PYTHON).parent))
    if binary is None:
        line("mailmerge", "not installed (pip install -e '.[bench]'): skipped")
        return None
    folder = root / "mailmerge"
    folder.mkdir()
    from publisher.mail.render import PLACEHOLDER

    # The digest's placeholders become mailmerge's Jinja2 variables.
    body = html.replace("{{", "{{ '{{' }}").replace("{%", "{{ '{%' }}").replace("{#", "{{ '{#' }}")
    body = PLACEHOLDER.sub(lambda m: "{{ " + m.group(1) + " }}", body)
    (folder / "template.txt").write_text(
        "TO: {{ email }}\nFROM: War in Context <news@example.org>\nSUBJECT: Daily digest\n"
        "CONTENT-TYPE: text/html\n\n" + body,
        encoding="utf-8",
    )
    with (folder / "database.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "unsubscribe_url", "preferences_url", "view_url"])
        for email, name, personal in people:
            writer.writerow([email, name, personal.unsubscribe_url, personal.preferences_url, personal.view_url])
    (folder / "server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n", encoding="utf-8")
    code, seconds, _, err = run_measured(
        [binary, "--no-dry-run", "--no-limit", "--output-format", "raw",
         "--template", "template.txt", "--database", "database.csv", "--config", "server.conf"],
        cwd=folder,
    )
    if code != 0:
        line("mailmerge", f"failed (exit {code}): {err.strip().splitlines()[-1:]}")
        return None
    return seconds


def run() -> None:
    total = size(3_000, 10_000)
    naive_sample = size(20, 60)
    mailmerge_sample = size(300, 1_000)
    heading(f"2. sending to smtp-sink: {total:,} subscribers, {CONNECTIONS} connections")

    from publisher.mail.digest import IssueMessages
    from publisher.mail.message import list_id
    from tests.helpers import build_message_reference
    from publisher.mail.render import personalize, render_issue
    from publisher.clock import SystemClock
    from publisher.mail.send import frozen_issue, deliver_issue, prepare_issue
    from publisher.mail.transports import SmtpTransport

    with SmtpSink() as sink, tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        root = Path(tmp)
        config, store = open_site(_site(root / "site", sink.port, total))
        try:
            prepare_seconds, issue_id = timed(lambda: prepare_issue(config, store, config.lists["daily"], now=NOW))
            send_seconds, report = timed(
                lambda: deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=SystemClock())
            )
            assert report.sent == total and report.complete, report
            info = store.issues.info(issue_id)
        finally:
            store.close()
        issue, rendered = frozen_issue(config, config.lists["daily"], info.number, info.rendered)
        publisher_rate = total / send_seconds

        # The same prepared bytes for the bare loop: publisher's messages, made beforehand.
        messages = IssueMessages(config, issue, rendered)
        pool = []
        for n in range(min(total, 500)):
            email = f"reader{n}@example.net"
            pool.append((email, messages.compose(messages.recipient(email, f"Reader {n}"), now=NOW)))
        bare_seconds = _bare_loop(sink.port, pool, total)
        bare_rate = total / bare_seconds

        # The naive pipeline end to end, on a sample, over one connection.
        from publisher.config import load_config

        site_info = load_config(config.path).site_info
        issue_with_posts = _issue_with_posts(config)

        def naive() -> None:
            with smtplib.SMTP("127.0.0.1", sink.port) as session:
                for n in range(naive_sample):
                    email = f"reader{n}@example.net"
                    fresh = render_issue(issue_with_posts, site_info, templates=config.mail.templates / "email")
                    personal = messages.recipient(email, f"Reader {n}")
                    html, text = personalize(fresh, personal)
                    data = build_message_reference(
                        fresh.subject, html, text, sender=config.mail.sender, to=personal,
                        reply_to=config.mail.reply_to, list_id=list_id("daily", "Daily digest", "example.org"),
                        unsubscribe_url=personal.unsubscribe_url, unsubscribe_mailto=None,
                        message_id=messages.message_id(email), date=NOW,
                    )
                    session.sendmail(SENDER, [email], data)

        naive_seconds, _ = timed(naive)
        naive_rate = naive_sample / naive_seconds

        people = [
            (f"reader{n}@example.net", f"Reader {n}", messages.recipient(f"reader{n}@example.net", f"Reader {n}"))
            for n in range(mailmerge_sample)
        ]
        mailmerge_seconds = _mailmerge(root, sink.port, rendered.html, people)

        line("message size (average of the prepared ones)", f"{sum(len(d) for _, d in pool) / len(pool):,.0f} bytes")
        line("publisher: prepare_issue (posts, render once, audience)", f"{prepare_seconds:.2f} s")
        line(f"publisher: deliver_issue, {CONNECTIONS} connections, outcomes committed together", f"{publisher_rate:,.0f} msgs/s")
        line("  with prepare_issue included", f"{total / (send_seconds + prepare_seconds):,.0f} msgs/s")
        line(f"bare smtplib loop, prepared bytes, {CONNECTIONS} connections", f"{bare_rate:,.0f} msgs/s")
        line(f"naive per recipient, 1 connection (sample of {naive_sample})", f"{naive_rate:,.1f} msgs/s")
        if mailmerge_seconds is not None:
            line(f"mailmerge, a connection per message (sample of {mailmerge_sample})", f"{mailmerge_sample / mailmerge_seconds:,.0f} msgs/s")
            line("  publisher / mailmerge", f"{publisher_rate / (mailmerge_sample / mailmerge_seconds):.1f}x")
        versus_bare = publisher_rate / bare_rate
        versus_naive = publisher_rate / naive_rate
        verdict(
            "2 sending vs bare smtplib",
            f"{publisher_rate:,.0f} vs {bare_rate:,.0f} msgs/s",
            versus_bare,
            ">= 0.80",
            versus_bare >= 0.8,
        )
        verdict(
            "2 sending vs naive pipeline",
            f"{publisher_rate:,.0f} vs {naive_rate:,.1f} msgs/s",
            versus_naive,
            ">= 20x",
            versus_naive >= 20,
        )

        _send_memory(root, sink.port)


def _issue_with_posts(config):
    """The issue the site's next digest would be, with its posts (for re-rendering)."""
    from publisher.content import load_posts, publish
    from publisher.mail.digest import next_issue
    from publisher.state.store import StateStore

    store = StateStore.open(config.state.path, readonly=True)
    try:
        with store.transaction():
            site, _ = publish(load_posts(config).posts, store=store.posts, now=NOW, config=config)
        issue = next_issue(site, config.lists["daily"], store, now=NOW, force=True)
    finally:
        store.close()
    return issue


def _send_memory(root: Path, port: int) -> None:
    audience = size(20_000, 100_000)
    heading(f"4a. memory: publisher send to {audience:,} subscribers (subprocess, peak RSS)")
    config_path = _site(root / "memory", port, audience)
    code, seconds, peak, err = run_measured(
        [PYTHON, "-m", "publisher", "--config", str(config_path), "-q", "send"], env={SECRET_ENV: SECRET}
    )
    if code != 0:
        raise RuntimeError(f"publisher send failed (exit {code}): {err[-2000:]}")
    # The same interpreter and imports doing nothing: what the send adds to it.
    _, _, idle, _ = run_measured([PYTHON, "-c", "import publisher.app.cli, publisher.mail.send, publisher.mail.transports"])
    line("publisher send: time, rate", f"{seconds:.1f} s, {audience / seconds:,.0f} msgs/s")
    line("peak RSS of the send / of Python with publisher imported", f"{peak:.0f} MB / {idle:.0f} MB")
    verdict("4 send memory", f"peak {peak:.0f} MB for {audience:,} subscribers", peak / 150, "< 1.0 (150 MB)", peak < 150)


if __name__ == "__main__":
    run()
