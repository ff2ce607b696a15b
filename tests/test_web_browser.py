"""A person in a real browser: subscribes on the index page, confirms from the
email, gets the next digest, reads it online and unsubscribes.

Headless Debian ``chromium`` driven by Playwright (see test_email_browser.py:
never ``playwright install``) against a real ``publisher serve`` process;
the mail goes to the site's outbox, read back with ``email``'s parser.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config

from .helpers.web_server import (
    SECRET,
    SECRET_ENV,
    WebServer,
    confirm_link,
    confirmations_to,
    free_port,
    make_web_site,
    outbox_messages,
)
from .helpers.waiting import wait_for

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

READER = "new-reader@example.net"


def subscription(db: Path, email: str) -> tuple[str | None, dict[str, str]]:
    connection = sqlite3.connect(db)
    try:
        row = connection.execute("SELECT id, status FROM subscribers WHERE email = ?", (email,)).fetchone()
        if row is None:
            return None, {}
        lists = connection.execute("SELECT list, status FROM subscriptions WHERE subscriber_id = ?", (row[0],))
        return row[1], dict(lists)
    finally:
        connection.close()


def test_subscribe_confirm_receive_read_and_leave(browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    port = free_port()
    site = make_web_site(tmp_path / "site", port)
    config_path = str(site / "publisher.toml")
    runner = CliRunner()
    result = runner.invoke(main, ["--config", config_path, "build"])
    assert result.exit_code == 0, result.output
    config = load_config(site / "publisher.toml")

    with WebServer(site / "publisher.toml", port) as server:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        page = context.new_page()
        refused: list[str] = []  # CSP violations and failed loads show up on the console
        page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
        try:
            # The index: the form, styled by site.css (the honeypot is off-screen).
            page.goto(server.url)
            assert page.title() == "Web Test Site"
            assert page.locator("#website").evaluate("el => getComputedStyle(el.parentElement).position") == "absolute"
            page.fill("#email", READER)
            page.fill("#name", "New Reader")
            page.check("input[name=list][value=daily]")
            page.click("button[type=submit]")
            page.wait_for_selector("h1:has-text('Check your inbox')")
            assert subscription(config.state.path, READER) == ("pending", {})

            # The email, as a mail client would read it.
            (message,) = wait_for(lambda: confirmations_to(config.mail.outbox, READER), what="the confirmation email")
            link = confirm_link(message)
            assert link.startswith(server.url + "confirm/")

            page.goto(link)
            assert page.locator("li", has_text="Daily digest").is_visible()
            assert subscription(config.state.path, READER) == ("pending", {}), "opening the link confirms nothing"
            page.click("#confirm")
            page.wait_for_selector("h1:has-text('You are subscribed')")
            assert subscription(config.state.path, READER) == ("active", {"daily": "active"})

            # The next digest reaches them.
            result = runner.invoke(main, ["--config", config_path, "send", "--list", "daily"])
            assert result.exit_code == 0, result.output
            assert "1 sent" in result.output
            def mine(subject: str):
                return [
                    m
                    for m in outbox_messages(config.mail.outbox)
                    if m["To"].addresses[0].addr_spec == READER and m["Subject"].startswith(subject)
                ]

            welcome = wait_for(lambda: mine("Welcome"), what="the welcome email")
            assert len(welcome) == 1 and welcome[0]["To"].addresses[0].display_name == "New Reader"
            digests = [m for m in mine("") if not m["Subject"].startswith(("Confirm", "Welcome"))]
            assert len(digests) == 1
            digest = digests[0]
            assert digest["To"].addresses[0].display_name == "New Reader"
            assert "Aid arrives" in digest["Subject"]

            # "View in browser" opens the web version, styled.
            html = digest.get_body(("html",)).get_content()
            view = f"{server.url}issues/daily/1/"
            assert f'href="{view}"' in html
            page.goto(view)
            assert page.locator("h2.post-title a", has_text="Aid arrives").is_visible()
            assert page.locator(".recipient-name").inner_text() == "there"
            colour = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert colour == "rgb(243, 244, 246)", "the email's inline styles apply"

            # The unsubscribe link: a page with a button; the button unsubscribes.
            unsubscribe = digest["List-Unsubscribe"].strip("<>")
            page.goto(unsubscribe)
            assert subscription(config.state.path, READER) == ("active", {"daily": "active"})
            page.click("#unsubscribe")
            page.wait_for_selector("h1:has-text('You are unsubscribed')")
            assert subscription(config.state.path, READER) == ("unsubscribed", {"daily": "unsubscribed"})
        finally:
            context.close()
        assert refused == [], refused
        assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output(), server.output()
