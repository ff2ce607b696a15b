"""Sending against a real SMTP server: exactly once, resumable, fault tolerant."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.clock import SystemClock
from publisher.mail.send import deliver_issue, prepare_issue
from publisher.mail.subscribers import remove_subscriber, set_subscriber_status
from publisher.state.store import StateStore
from publisher.mail.tokens import verify_token
from publisher.mail.transports import OutboxTransport, SmtpTransport

from .conftest import NOW
from .helpers.smtp_server import SmtpServer
from .helpers.sites import SECRET, make_site, publisher
from .conftest import SteppedClock
from .helpers.waiting import wait_for
from .helpers.state import state_rows


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)


def send(site: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "send", *args])


def unsubscribe_claims(data: bytes):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    token = msg["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    return msg["To"].addresses[0].addr_spec, verify_token(SECRET.encode(), token)


@pytest.mark.slow
def test_two_thousand_subscribers_through_a_pool_of_four(tmp_path: Path) -> None:
    with SmtpServer() as server:
        site = make_site(tmp_path / "site", server.port, 2000, extra="messages_per_connection = 0\n")
        result = send(site)
        assert result.exit_code == 0, result.output
        assert "2000 sent" in result.stdout
        delivered = server.delivered()
        assert len(delivered) == 2000 and set(delivered.values()) == {1}
        assert server.connections == 4  # the pool, each connection reused throughout
        for received in server.messages:
            (rcpt,) = received.rcpt_tos
            to, claims = unsubscribe_claims(received.data)
            assert to == rcpt
            assert (claims.subscriber, claims.list_name) == (rcpt, "daily")
        # Sending again: the issue is done and nothing new exists.
        again = send(site)
        assert again.exit_code == 0
        assert "Nothing to send for list 'daily': no new posts since issue 1; publish a post" in again.stdout
        assert len(server.messages) == 2000


@pytest.mark.slow
def test_faults_every_deliverable_subscriber_gets_exactly_one(tmp_path: Path) -> None:
    rejected = {f"reader{n}@example.net" for n in (3, 77, 150)}
    with SmtpServer(tempfail_rate=0.2, reject=rejected, drop_rate=0.03, seed=11) as server:
        site = make_site(tmp_path / "site", server.port, 400)
        first = send(site)
        # Whatever was still pending after the retries goes out on the next run.
        runs = [first]
        while "pending" in runs[-1].stderr and len(runs) < 6:
            runs.append(send(site))
        delivered = server.delivered()
        expected = {f"reader{n}@example.net" for n in range(400)} - rejected
        assert set(delivered) == expected
        assert set(delivered.values()) == {1}
        assert runs[-1].exit_code == 1  # the 550s failed permanently
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        issue_id = store.issues.all("daily")[0].id
        assert store.deliveries.counts(issue_id) == {"sent": 397, "failed": 3}
        for address in rejected:
            assert store.subscribers.find(address).status == "bounced"
    finally:
        store.close()
    status = CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "status"])
    assert "issue 1 (sent)" in status.stdout
    assert "397 sent, 3 failed, 0 skipped, 0 pending" in status.stdout


@pytest.mark.slow
def test_sigkill_part_way_then_resume_loses_nobody(tmp_path: Path, state_backend: str) -> None:
    """Killed at several points: nobody is skipped; duplicates stay within the pool size per kill.
    (On PostgreSQL the dead sender's batch waits out its lease, kept short here.)"""
    total, pool = 300, 4
    kills = (10, 60, 140, 230)
    env = {**os.environ, "TEST_PUBLISHER_SECRET": SECRET}
    with SmtpServer() as server:
        site = make_site(tmp_path / "site", server.port, total, connections=pool, extra="\n[state]\nlease = 2\n")
        command = publisher(site, "send")
        for kill_at in kills:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                wait_for(lambda: len(server.messages) >= kill_at or process.poll() is not None)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        delivered = server.delivered()
        assert set(delivered) == {f"reader{n}@example.net" for n in range(total)}
        duplicates = sum(count - 1 for count in delivered.values())
        assert duplicates <= pool * len(kills)
    config = load_config(site / "publisher.toml")
    db = StateStore.open(config.state.path)
    try:
        if state_backend == "sqlite":
            assert db.database.query("PRAGMA integrity_check") == [("ok",)]
        issue = db.issues.all("daily")[0]
        assert issue.status == "sent"
        assert db.deliveries.counts(issue.id) == {"sent": total}
    finally:
        db.close()


def test_a_subscriber_who_leaves_mid_issue_is_skipped(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 5)
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
        with store.transaction():
            remove_subscriber(store.subscribers, "reader2@example.net", "daily", now=NOW)
            set_subscriber_status(store.subscribers, "reader4@example.net", "complained", now=NOW)
        report = deliver_issue(config, store, OutboxTransport(config.mail.outbox), issue_id, clock=SystemClock())
    finally:
        store.close()
    assert (report.sent, report.skipped, report.pending) == (3, 2, 0)
    files = list((config.mail.outbox / "new").iterdir())
    recipients = sorted(unsubscribe_claims(f.read_bytes())[0] for f in files)
    assert recipients == ["reader0@example.net", "reader1@example.net", "reader3@example.net"]


def test_dry_run_renders_all_and_records_nothing(tmp_path: Path, state_backend: str) -> None:
    site = make_site(tmp_path / "site", None, 12)
    db = site / ".publisher" / "state.db"
    rows = state_rows(db)
    before = db.read_bytes() if state_backend == "sqlite" else None
    result = send(site, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "rendered for 12 recipients; nothing sent" in result.stdout
    assert state_rows(db) == rows
    if state_backend == "sqlite":
        assert db.read_bytes() == before
    assert not (site / "outbox").exists()


def test_send_to_nobody_says_so_and_how_to_add_someone(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 0)
    result = send(site)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "Nothing to send for list 'daily': no active subscribers; add one with "
        "`publisher subscribers add EMAIL --list daily` or import a CSV with `publisher subscribers import FILE.csv`."
    )
    assert not (site / "outbox").exists()


def test_each_retry_waits_twice_as_long_as_the_one_before(tmp_path: Path) -> None:
    """One recipient, answered 451 three times: the waits before tries 2, 3
    and 4 double (base 0.01 s, jitter half to all: 0.005-0.01, 0.01-0.02,
    0.02-0.04), whatever the jitter draws."""
    with SmtpServer(tempfail_first=3) as server:
        site = make_site(tmp_path / "site", server.port, 1, connections=1)
        config = load_config(site / "publisher.toml")
        config = replace(config, mail=replace(config.mail, attempts=4, backoff=0.01, backoff_max=1.0))
        store = StateStore.open(config.state.path)
        try:
            issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
            clock = SteppedClock()
            report = deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=clock, seed=7)
        finally:
            store.close()
    assert (report.sent, report.retries, report.pending) == (1, 3, 0)
    waits = clock.sleeps
    assert len(waits) == 3, waits
    for n, wait in enumerate(waits, 1):
        assert 0.01 * 2 ** (n - 1) / 2 <= wait <= 0.01 * 2 ** (n - 1), (n, waits)
    assert waits[2] > waits[0]


def test_each_run_gets_its_own_tries(tmp_path: Path) -> None:
    """[mail] attempts bounds the tries of one run: a delivery left pending
    by one run gets that many again in the next, not one."""
    with SmtpServer(tempfail_first=3) as server:
        site = make_site(tmp_path / "site", server.port, 1, connections=1)
        config = load_config(site / "publisher.toml")
        config = replace(config, mail=replace(config.mail, attempts=2))
        store = StateStore.open(config.state.path)
        try:
            issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
            first = deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=SteppedClock())
            second = deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=SteppedClock())
        finally:
            store.close()
        assert (first.sent, first.pending) == (0, 1)
        assert (second.sent, second.pending, second.retries) == (1, 0, 1)
        assert sum(server.rcpt_attempts.values()) == 4


def test_retries_back_off_on_the_injected_clock(tmp_path: Path) -> None:
    """Each recipient's first two tries get 451: the waits double, and all arrive."""
    with SmtpServer(tempfail_first=2) as server:
        site = make_site(tmp_path / "site", server.port, 3, connections=1)
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path)
        clock = SteppedClock()
        try:
            issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
            report = deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=clock, seed=1)
        finally:
            store.close()
        assert (report.sent, report.retries, report.pending) == (3, 6, 0)
        assert set(server.delivered().values()) == {1}
        # backoff = 0.01 s doubling, with jitter (half to all): a recipient's two
        # waits add up to 0.015-0.03 s. The three wait side by side, not in turn.
        assert 0.015 <= sum(clock.sleeps) <= 0.03


def test_transient_failures_past_the_limit_stay_pending_for_the_next_run(tmp_path: Path) -> None:
    with SmtpServer(tempfail={"reader1@example.net"}) as server:
        site = make_site(tmp_path / "site", server.port, 3, connections=1)
        result = send(site)
        assert result.exit_code == 1
        assert "1 delivery left pending" in result.stderr
        server.faults.tempfail = set()
        again = send(site)
        assert again.exit_code == 0, again.output
        assert set(server.delivered().values()) == {1} and len(server.delivered()) == 3


def test_server_refusing_us_stops_the_send_and_keeps_the_rest_pending(tmp_path: Path) -> None:
    with SmtpServer(auth=("news", "right")) as server:
        site = make_site(tmp_path / "site", server.port, 5, extra='username = "news"\n')
        os.environ["PUBLISHER_SMTP_PASSWORD"] = "wrong"
        try:
            result = send(site)
        finally:
            del os.environ["PUBLISHER_SMTP_PASSWORD"]
        assert result.exit_code == 2
        assert "send stopped" in result.stderr and "Traceback" not in result.output
        assert server.messages == []
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        assert store.deliveries.counts(store.issues.all("daily")[0].id) == {"pending": 5}
    finally:
        store.close()


def test_rate_limit_spaces_a_real_send(tmp_path: Path) -> None:
    with SmtpServer() as server:
        site = make_site(tmp_path / "site", server.port, 20, extra="rate = 5\n")
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path)
        clock = SteppedClock()
        try:
            issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
            report = deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=clock)
        finally:
            store.close()
        assert report.sent == 20
        # 20 messages at 5/s: 19 gaps of 0.2 s on the clock, whatever the real speed.
        assert sum(clock.sleeps) == pytest.approx(19 * 0.2)


def test_deliveries_are_read_a_page_at_a_time_with_retries_and_leavers(tmp_path: Path) -> None:
    """Pages smaller than the audience: everyone once, in order, retries and
    a subscriber who leaves on a later page included."""
    with SmtpServer(tempfail_first=1) as server:
        site = make_site(tmp_path / "site", server.port, 50, connections=3)
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path)
        try:
            issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
            assert [d.email for d in store.deliveries.pending(issue_id)] == [
                s.email for s in store.subscribers.audience("daily")
            ]
            remove_subscriber(store.subscribers, "reader44@example.net", now=NOW)
            pages = []
            real = store.deliveries.pending

            def paged(issue: int, **kwargs):
                pages.append(kwargs)
                return real(issue, **kwargs)

            store.deliveries.pending = paged  # type: ignore[method-assign]
            report = deliver_issue(
                config, store, SmtpTransport(config.mail.smtp), issue_id, clock=SteppedClock(), page_size=7
            )
        finally:
            store.close()
        assert (report.sent, report.skipped, report.pending, report.retries) == (49, 1, 0, 49)
        assert all(page["limit"] == 7 for page in pages) and len(pages) == 9  # 50 in 8 pages, then an empty one
        delivered = server.delivered()
        assert len(delivered) == 49 and set(delivered.values()) == {1}
        assert "reader44@example.net" not in delivered


def test_the_audience_is_frozen_without_loading_it(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 30)
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        remove_subscriber(store.subscribers, "reader3@example.net", "daily", now=NOW)
        set_subscriber_status(store.subscribers, "reader5@example.net", "bounced", now=NOW)
        audience = [s.email for s in store.subscribers.audience("daily")]
        assert store.deliveries.audience_size("daily") == len(audience) == 28
        issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
        assert [d.email for d in store.deliveries.pending(issue_id)] == audience
        assert store.deliveries.pending_count(issue_id) == 28
        assert [d.email for d in store.deliveries.pending(issue_id, after=0, limit=2)] == audience[:2]
    finally:
        store.close()
