"""A real Postfix bounces mail to unknown users with real DSNs to each
delivery's VERP address; `publisher bounces` reads them from the Maildir
Postfix delivers to and marks exactly those subscribers bounced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.state import StateStore

from .conftest import NOW, SteppedClock, invoke
from .helpers.postfix import private_postfix
from .helpers.sites import SECRET
from .helpers.waiting import wait_for

pytestmark = pytest.mark.slow

READERS = ["ann", "bob"]
GHOSTS = ["ghost1@local.test", "ghost2@local.test"]


def _site(root: Path, port: int, bounces: Path) -> Path:
    (root / "posts").mkdir(parents=True)
    (root / "posts" / "a.txt").write_text("+++\ndate = 2024-01-01T10:00:00Z\n+++\nTalks resume\n\nThey met.\n")
    (root / "publisher.toml").write_text(
        '[site]\ntitle = "Test Site"\nurl = "https://example.org/"\n\n[content]\npaths = ["posts"]\n\n'
        '[mail]\nfrom = "Test Site <news@example.org>"\nsecret_env = "TEST_PUBLISHER_SECRET"\n'
        'transport = "smtp"\nbounce_address = "bounces@bounce.test"\n\n'
        f'[mail.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = 2\n\n'
        f'[bounces]\nmaildir = "{bounces}"\n\n[lists.daily]\ntitle = "Daily"\nbackfill = 5\n'
    )
    return root / "publisher.toml"


def test_postfix_dsns_for_unknown_users_bounce_exactly_those(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)
    with private_postfix(READERS) as postfix:
        config_path = _site(tmp_path / "site", postfix.port, postfix.bounces)
        config = load_config(config_path)
        store = StateStore.open(config.state.path)
        with store.transaction():
            for email in [f"{name}@bounce.test" for name in READERS] + GHOSTS:
                add_subscriber(store.subscribers, email, "", ["daily"], source="test", now=NOW)
        store.close()

        sent = invoke("--config", str(config_path), "send", "--list", "daily", clock=SteppedClock(NOW))
        assert sent.exit_code == 0, sent.output + sent.stderr

        def dsns() -> list[Path]:
            found = sorted((postfix.bounces / "new").iterdir())
            return found if len(found) >= len(GHOSTS) else []

        arrived = wait_for(dsns, what="Postfix's DSNs in the bounce Maildir")
        for name in READERS:  # the readers got their digest, and nothing bounced for them
            assert wait_for(lambda: list((postfix.mailbox(name) / "new").iterdir()), what=f"{name}'s digest")
        # Each DSN came back to a per-delivery VERP address, not the From address.
        first = arrived[0].read_bytes()
        assert b"Delivered-To: bounces+" in first and b"Status: 5.1.1" in first

        result = invoke("--config", str(config_path), "bounces", clock=SteppedClock(NOW))
        assert result.exit_code == 0, result.output + result.stderr
        assert "2 hard" in result.output

        store = StateStore.open(config.state.path)
        statuses = {s.email: s.status for s in store.subscribers.matching()}
        assert statuses == {"ann@bounce.test": "active", "bob@bounce.test": "active", **{g: "bounced" for g in GHOSTS}}
        ghost = store.subscribers.find(GHOSTS[0])
        events = store.bounces.events(ghost.id)
        assert [(e.kind, e.status, e.source) for e in events] == [("hard", "5.1.1", "maildir")]
        assert events[0].issue_id == store.issues.all("daily")[0].id
        assert 'unknown user: "ghost1"' in events[0].diagnostic
        store.close()

        # Read mail is moved out of new/ into the .processed Maildir folder.
        assert list((postfix.bounces / "new").iterdir()) == []
        processed = sorted((postfix.bounces / ".processed" / "cur").iterdir())
        assert len(processed) == 2

        # Idempotent: nothing new to read; the same message put back counts once.
        again = invoke("--config", str(config_path), "bounces", clock=SteppedClock(NOW))
        assert again.exit_code == 0 and "Read 0 messages" in again.output
        shutil.copy(processed[0], postfix.bounces / "new" / "copy-of-first")
        third = invoke("--config", str(config_path), "bounces", clock=SteppedClock(NOW))
        assert "1 duplicate" in third.output
        store = StateStore.open(config.state.path)
        assert len(store.bounces.events(ghost.id)) == 1
        shown = invoke("--config", str(config_path), "subscribers", "show", GHOSTS[0])
        assert "status: bounced" in shown.output and "hard  5.1.1  daily #1  maildir" in shown.output
        status = invoke("--config", str(config_path), "status", clock=SteppedClock(NOW))
        assert "2 hard, 0 soft, 0 complaint" in status.output and "2 addresses bounced" in status.output
        store.close()
