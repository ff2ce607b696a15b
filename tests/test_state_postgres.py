"""The state store on PostgreSQL: choosing it, its schema version and
``publisher migrate``, ``publisher state copy`` both ways, advisory locks,
and waiting out a restart of the database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.state.postgres import PostgresDatabase, close_pools
from publisher.state.schema import MIGRATIONS
from publisher.state.store import StateStore

from .conftest import invoke
from .helpers.sites import make_site
from .helpers.state import state_rows


def on_postgres(site: Path, url: str) -> None:
    """Point the site's config at ``url``."""
    config = site / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + f'\n[state]\nurl = "{url}"\n', encoding="utf-8")


@pytest.fixture
def url(postgres_server) -> str:
    yield postgres_server.create_database()
    close_pools()


def schema_version(url: str) -> int:
    database = PostgresDatabase.open(url, check=False)
    try:
        return database.version()
    finally:
        database.close()


def test_a_new_database_gets_the_schema_and_the_site_works_on_it(tmp_path: Path, url: str) -> None:
    site = make_site(tmp_path / "site", None, 0)
    shutil.rmtree(site / ".publisher")  # make_site's SQLite store
    on_postgres(site, url)
    assert invoke("--config", str(site / "publisher.toml"), "subscribers", "add", "a@example.net").exit_code == 0
    result = invoke("--config", str(site / "publisher.toml"), "send")
    assert result.exit_code == 0, result.output
    assert len(list((site / "outbox" / "new").iterdir())) == 1
    assert schema_version(url) == len(MIGRATIONS)
    assert not (site / ".publisher" / "state.db").exists()  # nothing went to SQLite


def test_an_older_store_says_so_and_exits_2_until_migrate(tmp_path: Path, url: str) -> None:
    database = PostgresDatabase.open(url, check=False)
    database.migrate(MIGRATIONS[:5])
    database.close()
    site = make_site(tmp_path / "site", None, 0)
    on_postgres(site, url)
    config = str(site / "publisher.toml")
    refused = invoke("--config", config, "status")
    assert refused.exit_code == 2
    assert f"at schema 5, this publisher needs {len(MIGRATIONS)}; run `publisher migrate`" in refused.stderr
    assert schema_version(url) == 5  # refusing changed nothing
    migrated = invoke("--config", config, "migrate")
    assert migrated.exit_code == 0, migrated.output
    assert f"schema 5 -> {len(MIGRATIONS)}" in migrated.stdout
    assert invoke("--config", config, "migrate").stdout.endswith(f"already at schema {len(MIGRATIONS)}; nothing to do\n")
    assert invoke("--config", config, "status").exit_code == 0


def test_a_store_newer_than_the_code_is_refused(tmp_path: Path, url: str) -> None:
    database = PostgresDatabase.open(url)
    database.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    database.close()
    site = make_site(tmp_path / "site", None, 0)
    on_postgres(site, url)
    for command in ("status", "migrate"):
        result = invoke("--config", str(site / "publisher.toml"), command)
        assert result.exit_code == 2
        assert f"written by a newer publisher (schema {len(MIGRATIONS) + 1}); upgrade publisher" in result.stderr


def test_a_wrong_database_is_one_line_and_exit_2(tmp_path: Path, postgres_server) -> None:
    site = make_site(tmp_path / "site", None, 0)
    on_postgres(site, postgres_server.url("no_such_database"))
    result = invoke("--config", str(site / "publisher.toml"), "status")
    assert result.exit_code == 2
    assert "cannot connect to the state database" in result.stderr and "no_such_database" in result.stderr


def test_state_copy_to_postgres_and_back_keeps_every_row(tmp_path: Path, url: str) -> None:
    site = make_site(tmp_path / "site", None, 5)
    config = str(site / "publisher.toml")
    assert invoke("--config", config, "build").exit_code == 0
    assert invoke("--config", config, "send").exit_code == 0
    invoke("--config", config, "subscribers", "remove", "reader1@example.net")
    original = site / ".publisher" / "state.db"
    rows = state_rows(original)
    assert rows["deliveries"] and rows["posts"] and rows["subscriptions"]

    there = invoke("--config", config, "state", "copy", "--from", f"sqlite:{original}", "--to", url)
    assert there.exit_code == 0, there.output
    assert "counts and checksums match" in there.stdout
    assert f"deliveries: {len(rows['deliveries'])} rows" in there.stdout

    back = tmp_path / "back.db"
    again = invoke("--config", config, "state", "copy", "--from", url, "--to", f"sqlite:{back}")
    assert again.exit_code == 0, again.output
    assert state_rows(back) == rows
    # The same checksums both ways: the rows are the same, whatever holds them.
    assert there.stdout.splitlines()[:-1] == again.stdout.splitlines()[:-1]

    # The site runs on the copy: the same post identities (feeds unchanged),
    # the issue already sent, ids going on from the copied ones.
    on_postgres(site, url)
    rebuilt = invoke("--config", config, "build")
    assert rebuilt.exit_code == 0 and "0 written" in rebuilt.stdout
    assert "Nothing to send" in invoke("--config", config, "send").stdout
    assert invoke("--config", config, "subscribers", "add", "new@example.net").exit_code == 0
    store = StateStore.connect(load_config(site / "publisher.toml").state)
    try:
        assert store.subscribers.find("new@example.net").id == len(rows["subscribers"]) + 1
    finally:
        store.close()


def test_state_copy_refuses_a_target_that_is_not_empty(tmp_path: Path, url: str) -> None:
    site = make_site(tmp_path / "site", None, 2)
    config = str(site / "publisher.toml")
    original = site / ".publisher" / "state.db"
    assert invoke("--config", config, "state", "copy", "--from", str(original), "--to", url).exit_code == 0
    before = schema_version(url), state_rows_of(url)
    result = invoke("--config", config, "state", "copy", "--from", str(original), "--to", url)
    assert result.exit_code == 2
    assert "the target is not empty (subscribers holds 2 rows)" in result.stderr
    assert (schema_version(url), state_rows_of(url)) == before


def state_rows_of(url: str) -> dict[str, list[tuple]]:
    database = PostgresDatabase.open(url)
    try:
        return {table: sorted(database.query(f"SELECT * FROM {table}"), key=repr) for table in database.tables()}
    finally:
        database.close()


def test_advisory_locks_hold_across_connections_and_name_the_holder(tmp_path: Path, url: str) -> None:
    import os

    from publisher.state import send_lock
    from publisher.state.locks import SendLocked

    site = make_site(tmp_path / "site", None, 0)
    on_postgres(site, url)
    settings = load_config(site / "publisher.toml").state
    first, second, other_list = send_lock(settings, "daily"), send_lock(settings, "daily"), send_lock(settings, "weekly")
    first.acquire()
    try:
        holder = second.try_acquire()
        assert holder is not None and holder.startswith(f"publisher {os.getpid()}@")
        with pytest.raises(SendLocked, match=f"list 'daily' is being sent by publisher {os.getpid()}@"):
            second.acquire()
        assert other_list.try_acquire() is None
        other_list.release()
    finally:
        first.release()
    assert second.try_acquire() is None
    second.release()
    assert not list((site / ".publisher").glob("*.lock"))  # no lock file: the lock is in the database


def test_a_read_only_store_keeps_nothing_and_refuses_changes(url: str) -> None:
    from publisher.errors import StateError

    store = StateStore.on(PostgresDatabase.open(url, readonly=True))
    try:
        with store.transaction():
            store.database.execute("INSERT INTO job_runs (job) VALUES ('x')")
            assert store.database.query("SELECT job FROM job_runs") == [("x",)]
        assert store.database.query("SELECT job FROM job_runs") == []
        with pytest.raises(StateError, match="opened read-only; cannot change subscribers"):
            store.subscribers.set_name(1, "x")
    finally:
        store.close()
    # The schema made in the read-only session was not kept either.
    assert schema_version(url) == 0


def test_the_state_url_is_checked_and_its_password_read_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    from publisher.errors import ConfigError

    from .conftest import write_config

    path = write_config(tmp_path, '\n[state]\nurl = "postgresql://publisher:hunter2@db/publisher"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "[state] url: must not hold the password: put it in the variable named by password_env, or in ~/.pgpass"
    ]
    path = write_config(tmp_path, '\n[state]\nurl = "mysql://db/publisher"\n')
    with pytest.raises(ConfigError, match=r"\[state\] url: must be a PostgreSQL URL"):
        load_config(path)
    path = write_config(tmp_path, '\n[state]\nurl = "postgresql://publisher@db/publisher"\npassword_env = "DB_PASS"\n')
    monkeypatch.setenv("DB_PASS", "s3cret")
    state = load_config(path).state
    assert (state.url, state.password, state.pool, state.timeout, state.lease) == (
        "postgresql://publisher@db/publisher", "s3cret", 4, 30, 300,
    )
