"""The confirmation mailer waits for the web server to be quiet: its work
never runs while the request that queued it (or any other) is still being
answered, unless requests keep coming past its deadline. Requests are
held open by hand and released; every wait is for an event."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.test import create_environ

from publisher.config import Config, load_config
from publisher.mail.optin_mailer import ConfirmationMailer
from publisher.mail.transports import OutboxTransport
from publisher.app.web.app import create_app
from publisher.app.web.quiet import Quiet

from .conftest import NOW
from .helpers.waiting import wait_for
from .helpers.web_server import SECRET, SECRET_ENV, make_web_site, outbox_messages


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", b"there"]


def _failing(environ, start_response):
    raise RuntimeError("the view failed")


def _start(status, headers, exc_info=None):
    return lambda data: None


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return load_config(make_web_site(tmp_path / "site", 8080) / "publisher.toml")


def test_a_request_counts_until_its_body_is_sent_or_closed() -> None:
    quiet = Quiet(_hello, settle=0.0)
    first = quiet(create_environ("/"), _start)
    second = quiet(create_environ("/"), _start)
    assert quiet.in_flight == 2
    assert b"".join(first) == b"hello there"
    assert quiet.in_flight == 1
    first.close()  # sent, then closed: counted once
    assert quiet.in_flight == 1
    second.close()  # closed without being read (the client went away)
    assert quiet.in_flight == 0


def test_a_failing_view_is_no_request_in_flight() -> None:
    quiet = Quiet(_failing, settle=0.0)
    with pytest.raises(RuntimeError):
        quiet(create_environ("/"), _start)
    assert quiet.in_flight == 0
    assert quiet.wait(float("inf")) is True


def test_wait_returns_at_its_deadline_while_a_request_is_in_flight() -> None:
    quiet = Quiet(_hello, settle=0.0)
    quiet(create_environ("/"), _start)
    assert quiet.wait(0.0) is False  # a deadline already past: no waiting
    stopper = threading.Thread(target=lambda: (wait_for(lambda: quiet.waiting == 1), quiet.stop()))
    stopper.start()
    assert quiet.wait(float("inf")) is False  # no deadline: until stopped
    stopper.join()
    assert quiet.wait(float("inf")) is False  # stopped: nothing waits


def test_the_settling_time_follows_the_last_answer() -> None:
    now = [100.0]
    quiet = Quiet(_hello, settle=5.0, clock=lambda: now[0])
    b"".join(quiet(create_environ("/"), _start))  # answered at 100
    assert quiet.wait(100.0) is False  # not settled yet, and the deadline is now
    now[0] = 105.0
    assert quiet.wait(float("inf")) is True


def _mailer_behind_quiet(config: Config, *, longest: float) -> tuple[Quiet, ConfirmationMailer]:
    quiet = Quiet(_hello, settle=0.0)
    return quiet, ConfirmationMailer(config, OutboxTransport(config.mail.outbox), quiet=quiet, longest=longest)


def test_the_mailer_waits_for_the_request_that_queued_the_work(config: Config) -> None:
    quiet, mailer = _mailer_behind_quiet(config, longest=3600)
    answer = quiet(create_environ("/subscribe", method="POST"), _start)  # being answered
    assert mailer.submit("new@example.net", "", ["daily"], now=NOW)
    wait_for(lambda: quiet.waiting == 1, what="the mailer waiting for quiet")
    assert outbox_messages(config.mail.outbox) == []
    assert b"".join(answer) == b"hello there"  # the answer has gone
    wait_for(lambda: len(outbox_messages(config.mail.outbox)) == 1, what="the confirmation email")
    assert quiet.waiting == 0
    mailer.close()


def test_past_its_deadline_the_mailer_works_even_while_requests_keep_coming(config: Config) -> None:
    quiet, mailer = _mailer_behind_quiet(config, longest=0.0)
    quiet(create_environ("/"), _start)  # never answered
    assert mailer.submit("busy@example.net", "", ["daily"], now=NOW)
    wait_for(lambda: len(outbox_messages(config.mail.outbox)) == 1, what="the confirmation email")
    assert quiet.in_flight == 1
    mailer.close()


def test_closing_the_mailer_sends_what_waits_for_quiet(config: Config) -> None:
    quiet, mailer = _mailer_behind_quiet(config, longest=3600)
    quiet(create_environ("/"), _start)  # never answered
    assert mailer.submit("first@example.net", "", ["daily"], now=NOW)
    assert mailer.submit("second@example.net", "", ["daily"], now=NOW)
    wait_for(lambda: quiet.waiting == 1, what="the mailer waiting for quiet")
    mailer.close()
    sent = sorted(m["To"].addresses[0].addr_spec for m in outbox_messages(config.mail.outbox))
    assert sent == ["first@example.net", "second@example.net"]


def test_the_web_app_counts_its_answers_for_the_mailer(config: Config) -> None:
    app = create_app(config, transport=OutboxTransport(config.mail.outbox), clock=lambda: NOW)
    mailer = app.extensions["publisher.mailer"]
    quiet = mailer.quiet
    assert isinstance(quiet, Quiet)
    client = app.test_client()
    response = client.get("/", buffered=False)
    assert quiet.in_flight == 1
    response.get_data()
    assert quiet.in_flight == 0
    mailer.close()
