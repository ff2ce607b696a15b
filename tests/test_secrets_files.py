"""The signing secret and the private files: a lost secret is never
silently replaced once issues went out, a rotated one keeps old links
working for its grace period (against a real ``publisher serve``), existing
readable files are made private with a warning, and no repr shows a secret."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.keyring import KeyFileError, format_key_file, parse_key_file
from publisher.mail.subscribers import add_subscriber
from publisher.mail.tokens import sign_token, verify_token_ring
from publisher.mail.transports import OutboxTransport
from publisher.state.store import StateStore

from .conftest import NOW
from .helpers.web_server import Client, WebServer, free_port, make_web_site

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def keyfile_site(tmp_path: Path, port: int = 8080) -> Path:
    """A site whose secret lives in its key file (the environment variable unset)."""
    site = make_web_site(tmp_path / "site", port)
    text = (site / "publisher.toml").read_text(encoding="utf-8").replace('secret_env = "TEST_PUBLISHER_WEB_SECRET"', 'secret_env = "TEST_UNSET_SECRET"')
    (site / "publisher.toml").write_text(text, encoding="utf-8")
    return site


def run(site: Path, *args: str, clock=None):
    obj = {"clock": clock} if clock else None
    return CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), *args], obj=obj, env={"TEST_UNSET_SECRET": None})


@pytest.mark.slow
def test_a_lost_secret_is_not_replaced_once_issues_went_out(tmp_path: Path) -> None:
    site = keyfile_site(tmp_path)
    assert run(site, "build").exit_code == 0
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    add_subscriber(store.subscribers, "reader@example.net", "", ["daily"], source="test", now=NOW)
    store.close()
    first = run(site, "send", "--list", "daily")
    assert first.exit_code == 0, first.output
    assert config.mail.secret_file.exists(), "created on first use"
    config.mail.secret_file.unlink()  # lost in a move to a new machine
    again = run(site, "send", "--list", "daily")
    assert again.exit_code == 2
    assert "1 issue went out" in again.stderr and "Restore the key file" in again.stderr
    assert "Traceback" not in again.output
    # The server refuses to start the same way.
    env = {k: v for k, v in os.environ.items() if k != "TEST_UNSET_SECRET"}
    served = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(site / "publisher.toml"), "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert served.returncode == 2 and "Restore the key file" in served.stderr
    assert "Traceback" not in served.stderr
    assert not config.mail.secret_file.exists()


@pytest.mark.slow
def test_rotation_keeps_old_links_working_for_the_grace_period(tmp_path: Path) -> None:
    port = free_port()
    site = keyfile_site(tmp_path, port)
    assert run(site, "build").exit_code == 0
    assert run(site, "subscribers", "add", "kept@example.net", "--list", "daily").exit_code == 0
    # The first serve creates the key file (no issue has gone out yet).
    env = {k: v for k, v in os.environ.items() if k != "TEST_UNSET_SECRET"}
    with WebServer(site / "publisher.toml", port, env):
        pass
    old = load_config(site / "publisher.toml").mail.secret
    old_token = sign_token(old, "kept@example.net", "daily")
    result = run(site, "secret", "rotate")
    assert result.exit_code == 0, result.output
    rotated = load_config(site / "publisher.toml").mail
    assert rotated.secret != old and [s for s, _ in rotated.previous_secrets] == [old]
    assert stat.S_IMODE(rotated.secret_file.stat().st_mode) == 0o600
    with WebServer(site / "publisher.toml", port, env) as server:
        client = Client(server.port)
        assert client.get(f"/unsubscribe/{old_token}").status == 200, "a link already in a mailbox"
        new_token = sign_token(rotated.secret, "kept@example.net", "daily")
        assert client.get(f"/unsubscribe/{new_token}").status == 200
        forged = sign_token(b"a-secret-nobody-ever-had-0123456789", "kept@example.net", "daily")
        assert client.get(f"/unsubscribe/{forged}").status == 400


def test_a_retired_secret_stops_working_after_its_grace() -> None:
    old, new = b"an-old-secret-long-enough-000000", b"a-new-secret-long-enough-1111111"
    token = sign_token(old, "a@example.net", "daily")
    retired = [(old, NOW)]
    grace = timedelta(days=180)
    assert verify_token_ring(new, token, "unsubscribe", retired=retired, grace=grace, now=NOW + grace) is not None
    assert verify_token_ring(new, token, "unsubscribe", retired=retired, grace=grace, now=NOW + grace + timedelta(seconds=1)) is None
    current, ring = parse_key_file(format_key_file(new, retired))
    assert (current, ring) == (new, ((old, NOW),))
    with pytest.raises(KeyFileError, match="line 2"):
        parse_key_file(new + b"\nnot a retired line\n")


def test_readable_files_are_made_private_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "state" / "state.db"
    StateStore.open(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    os.chmod(db, 0o644)
    os.chmod(db.parent, 0o755)
    outbox = tmp_path / "outbox"
    (outbox / "new").mkdir(parents=True)
    os.chmod(outbox, 0o755)
    old_message = outbox / "new" / "1.M1P1Q1.host.eml"
    old_message.write_bytes(b"Subject: old\r\n\r\nbody\r\n")
    os.chmod(old_message, 0o644)
    with caplog.at_level(logging.WARNING):
        StateStore.open(db).close()
        OutboxTransport(outbox).connect().send("a@example.org", "b@example.org", b"Subject: new\r\n\r\nbody\r\n")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert stat.S_IMODE(old_message.stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (outbox / "new").iterdir())
    assert "state.db: was readable by others" in caplog.text
    assert "state: was readable by others" in caplog.text
    # The site's own folder (it holds the config) is left as it is.
    site = tmp_path / "site"
    site.mkdir(mode=0o755)
    (site / "publisher.toml").write_text("", encoding="utf-8")
    os.chmod(site, 0o755)
    StateStore.open(site / "state.db").close()
    assert stat.S_IMODE(site.stat().st_mode) == 0o755
    assert stat.S_IMODE((site / "state.db").stat().st_mode) == 0o600
    assert "1 messages were readable by others" in caplog.text


def test_opening_while_the_last_other_connection_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server opens the database for each request: the last connection
    closing removes state.db-wal and -shm while another one opens. That
    open must not fail for a file gone between its listing and its chmod."""
    import publisher.state.database as database

    db = tmp_path / "state" / "state.db"
    other = StateStore.open(db)
    other.subscribers.find("a@example.net")  # a read: the -wal and -shm files exist
    wal, shm = db.with_name("state.db-wal"), db.with_name("state.db-shm")
    assert wal.exists() and shm.exists()
    real = database.make_private
    seen: list[str] = []

    def closing_meanwhile(path: Path, mode: int) -> bool:
        seen.append(path.name)
        if path == wal:
            other.close()  # the last other connection: SQLite removes both files
            assert not wal.exists() and not shm.exists()
        return real(path, mode)

    monkeypatch.setattr(database, "make_private", closing_meanwhile)
    store = StateStore.open(db)
    try:
        assert store.subscribers.find("a@example.net") is None
    finally:
        store.close()
    assert seen[-3:] == ["state.db", "state.db-wal", "state.db-shm"]


def test_no_repr_shows_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_web_site(tmp_path / "site", 8080, extra='\n[mail.smtp]\nhost = "relay.example"\nusername = "news"\n')
    monkeypatch.setenv("TEST_PUBLISHER_WEB_SECRET", "the-signing-secret-value-1234567")
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "the-smtp-password-value")
    config = load_config(site / "publisher.toml")
    assert config.mail.secret == b"the-signing-secret-value-1234567"
    assert config.mail.smtp.password == "the-smtp-password-value"
    for shown in (repr(config), repr(config.mail), repr(config.mail.smtp), str(config.mail)):
        assert "the-signing-secret-value" not in shown and "the-smtp-password-value" not in shown
