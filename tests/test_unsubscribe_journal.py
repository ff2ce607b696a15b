"""The unsubscribe journal: one-click unsubscribes ``publisher serve`` kept
while the state store was busy are applied before anyone is mailed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.mail.unsubscribe_journal import UnsubscribeJournal
from publisher.state.store import StateStore

from .conftest import NOW
from .helpers.web_server import SECRET, SECRET_ENV, make_web_site, outbox_messages


@pytest.mark.slow
def test_send_applies_journaled_unsubscribes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    site = make_web_site(tmp_path / "site", 8080)
    config_path = str(site / "publisher.toml")
    assert CliRunner().invoke(main, ["--config", config_path, "build"]).exit_code == 0
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    for address in ("stays@example.net", "left@example.net"):
        add_subscriber(store.subscribers, address, "", ["daily"], source="test", now=NOW)
    store.close()
    journal = UnsubscribeJournal(config.state.path)
    journal.record("left@example.net", "daily", now=NOW)
    assert journal.path.stat().st_mode & 0o077 == 0
    result = CliRunner().invoke(main, ["--config", config_path, "send", "--list", "daily"])
    assert result.exit_code == 0, result.output
    assert [m["To"].addresses[0].addr_spec for m in outbox_messages(config.mail.outbox)] == ["stays@example.net"]
    assert not journal.pending()
    store = StateStore.open(config.state.path)
    try:
        assert store.subscribers.find("left@example.net").status == "unsubscribed"
    finally:
        store.close()


def test_a_bad_line_is_skipped_and_the_rest_applied(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)
    try:
        add_subscriber(store.subscribers, "a@example.net", "", ["daily", "weekly"], source="test", now=NOW)
        journal = UnsubscribeJournal(path)
        journal.record("a@example.net", "weekly", now=NOW)
        with journal.path.open("a", encoding="utf-8") as handle:
            handle.write("not json\n")
        assert journal.apply(store, now=NOW) == 1
        assert store.subscribers.find("a@example.net").lists == ("daily",)
        assert "not a journaled unsubscribe" in caplog.text
        assert not journal.pending() and journal.apply(store, now=NOW) == 0
    finally:
        store.close()
