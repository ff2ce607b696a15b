"""`publisher send`'s choices: a test send with --to (recording nothing),
every list with something due when no --list is given, and lists in post
mode (one email per new post). A real SMTP server, or the outbox."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.state.store import StateStore

from .conftest import NOW, SteppedClock, invoke
from .helpers.sites import SECRET, add_post, make_site
from .helpers.smtp_server import SmtpServer


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)


def _send(site: Path, *args: str, at=NOW):
    return invoke("--config", str(site / "publisher.toml"), "send", *args, clock=SteppedClock(at))


def _recorded(site: Path) -> tuple[int, int]:
    """(issues, deliveries) in the state store."""
    store = StateStore.open(load_config(site / "publisher.toml").state.path, readonly=True)
    try:
        (issues,) = store.database.query_one("SELECT COUNT(*) FROM issues")
        (deliveries,) = store.database.query_one("SELECT COUNT(*) FROM deliveries")
        return issues, deliveries
    finally:
        store.close()


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.mark.slow
def test_send_to_sends_the_next_issue_as_a_test_and_records_nothing(tmp_path: Path) -> None:
    with SmtpServer() as server:
        site = make_site(tmp_path / "site", server.port, 3)
        result = _send(site, "--to", "author@example.org", "--to", "Editor@Example.ORG")
        assert result.exit_code == 0, result.stderr
        assert "Test of issue 1 of 'daily' ([Test]): 2 sent to author@example.org, Editor@example.org" in result.stdout
        assert sorted(r for m in server.messages for r in m.rcpt_tos) == ["Editor@example.org", "author@example.org"]
        tests = [_parse(m.data) for m in server.messages]
        assert {m["Subject"] for m in tests} == {"[Test] Test Site: Talks resume"}
        assert "Talks resume" in tests[0].get_body(("plain",)).get_content()
        assert _recorded(site) == (0, 0)

        # Sent again (a second check), then for real: the test used no issue number and marked nothing sent.
        assert _send(site, "--to", "author@example.org").exit_code == 0
        real = _send(site)
        assert "Issue 1 of 'daily': 3 sent" in real.stdout
        subjects = [_parse(m.data)["Subject"] for m in server.messages[3:]]
        assert subjects == ["Test Site: Talks resume"] * 3
        assert _recorded(site) == (1, 3)


def test_send_to_with_a_prefix_of_the_lists_own_and_a_bad_address(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 1)
    config = site / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + 'test_prefix = "[Proof] "\n', encoding="utf-8")
    bad = _send(site, "--to", "not-an-address")
    assert bad.exit_code == 2 and bad.stderr.startswith("--to: invalid address 'not-an-address'")
    assert _send(site, "--to", "author@example.org").exit_code == 0
    (message,) = (site / "outbox" / "new").iterdir()
    assert _parse(message.read_bytes())["Subject"] == "[Proof] Test Site: Talks resume"
    assert _recorded(site) == (0, 0)


def _two_lists(tmp_path: Path) -> Path:
    site = make_site(tmp_path / "site", None, 2)
    config = site / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[lists.weekly]\ntitle = "Weekly"\nbackfill = 5\n', encoding="utf-8"
    )
    store = StateStore.open(load_config(config).state.path)
    try:
        with store.transaction():
            add_subscriber(store.subscribers, "weekly@example.net", "W", ["weekly"], source="test", now=NOW)
    finally:
        store.close()
    return site


def test_send_without_list_sends_every_list_with_something_due(tmp_path: Path) -> None:
    site = _two_lists(tmp_path)
    result = _send(site)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Issue 1 of 'daily': 2 sent to outbox/new/, 0 failed, 0 skipped, 0 pending" in lines
    assert "Issue 1 of 'weekly': 1 sent to outbox/new/, 0 failed, 0 skipped, 0 pending" in lines
    assert _recorded(site) == (2, 3)

    again = _send(site, at=NOW + timedelta(hours=1))
    assert again.exit_code == 0
    assert [line.split(":")[0] for line in again.stdout.splitlines()] == [
        "Nothing to send for list 'daily'", "Nothing to send for list 'weekly'"
    ]

    add_post(site, "news", NOW + timedelta(hours=2))
    one = _send(site, "--list", "weekly", at=NOW + timedelta(hours=3))
    assert one.stdout.splitlines() == ["Issue 2 of 'weekly': 1 sent to outbox/new/, 0 failed, 0 skipped, 0 pending"]
    assert _recorded(site) == (3, 4)


def test_a_list_in_post_mode_sends_each_new_post_as_its_own_email(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 2, backfill=None)
    config = site / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + 'mode = "post"\nfull_content = false\n', encoding="utf-8")
    assert invoke("--config", str(config), "build", clock=SteppedClock(NOW)).exit_code == 0
    add_post(site, "one", NOW + timedelta(hours=1))
    add_post(site, "two", NOW + timedelta(hours=2))
    result = _send(site, at=NOW + timedelta(hours=3))
    assert result.exit_code == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "Issue 1 of 'daily'", "Issue 2 of 'daily'"
    ]
    messages = [_parse(p.read_bytes()) for p in (site / "outbox" / "new").iterdir()]
    assert sorted(m["Subject"] for m in messages) == ["Post one", "Post one", "Post two", "Post two"]
    one = next(m for m in messages if m["Subject"] == "Post one")
    text = one.get_body(("plain",)).get_content()
    assert "The body of one." in text and "Post two" not in text  # in full, whatever full_content says
    # Each post is sent once.
    assert "Nothing to send for list 'daily': no new posts since issue 2" in _send(site, at=NOW + timedelta(days=1)).stdout


def test_a_list_held_by_another_sender_does_not_keep_the_others_from_going_out(tmp_path: Path) -> None:
    from publisher.state import SendLock

    site = _two_lists(tmp_path)
    held = SendLock(load_config(site / "publisher.toml").state.path, "daily")
    held.acquire()  # as the scheduler sending the daily list holds it
    try:
        result = _send(site)
    finally:
        held.release()
    assert result.exit_code == 2
    assert "list daily: list 'daily' is being sent by process" in result.stderr
    assert result.stdout.splitlines() == ["Issue 1 of 'weekly': 1 sent to outbox/new/, 0 failed, 0 skipped, 0 pending"]
    assert "Issue 1 of 'daily': 2 sent" in _send(site).stdout


def test_a_dry_run_of_every_list_sends_and_records_nothing(tmp_path: Path) -> None:
    site = _two_lists(tmp_path)
    result = _send(site, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Dry run: issue 1 of 'daily' rendered for 2 recipients; nothing sent.",
        "Dry run: issue 1 of 'weekly' rendered for 1 recipient; nothing sent.",
    ]
    assert _recorded(site) == (0, 0) and not (site / "outbox" / "new").exists()
