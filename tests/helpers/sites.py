"""Sites for the send, scheduler and reliability tests: a config, one post, a list, subscribers."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.state import JobRun
from publisher.state.store import StateStore

from ..conftest import NOW
from .state import pin_state

SECRET = "a-test-secret-that-is-long-enough"


def make_site(
    root: Path, port: int | None, subscribers: int, *, connections: int = 4, extra: str = "", backfill: int | None = 5
) -> Path:
    """A site with one post, a list and ``subscribers`` active subscribers.

    The list's first issue holds the newest ``backfill`` posts (so the
    site's one post is sent); None: only posts new since the list was made.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "posts").mkdir(exist_ok=True)
    (root / "posts" / "a.txt").write_text(
        "+++\ndate = 2024-01-01T10:00:00Z\n+++\nTalks resume\n\nBBC News reports: They met.\n", encoding="utf-8"
    )
    transport = (
        f'transport = "smtp"\n\n[mail.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f"connections = {connections}\ntimeout = 5\n"
        if port
        else 'transport = "outbox"\n'
    )
    (root / "publisher.toml").write_text(
        '[site]\ntitle = "Test Site"\nurl = "https://example.org/"\n'
        'author = { name = "Editor", email = "editor@example.org" }\n\n'
        '[content]\npaths = ["posts"]\n\n'
        '[mail]\nfrom = "Test Site <news@example.org>"\nsecret_env = "TEST_PUBLISHER_SECRET"\n'
        "attempts = 4\nbackoff = 0.01\nbackoff_max = 0.05\n"
        + transport
        + extra
        + '\n[lists.daily]\ntitle = "Daily"\n'
        + (f"backfill = {backfill}\n" if backfill is not None else ""),
        encoding="utf-8",
    )
    config = load_config(root / "publisher.toml")
    store = StateStore.connect(config.state)
    with store.transaction():
        for n in range(subscribers):
            add_subscriber(store.subscribers, f"reader{n}@example.net", f"Reader {n}", ["daily"], source="test", now=NOW)
    store.close()
    return root



def scheduled_site(
    tmp_path: Path,
    *,
    schedule: str = "daily at 07:00",
    list_keys: str = "",
    build: str | None = None,
    subscribers: int = 3,
    port: int | None = None,
    connections: int = 4,
    timezone_name: str | None = None,
    backfill: int | None = 5,
) -> Path:
    """make_site's site (one post, list "daily") with a schedule for the list."""
    jobs = f'\n[jobs]\nbuild = "{build}"\n' if build else ""
    site = make_site(tmp_path / "site", port, subscribers, connections=connections, extra=jobs, backfill=backfill)
    path = site / "publisher.toml"
    text = path.read_text(encoding="utf-8") + f'schedule = "{schedule}"\n' + list_keys
    if timezone_name:
        text = text.replace("[site]\n", f'[site]\ntimezone = "{timezone_name}"\n', 1)
    path.write_text(text, encoding="utf-8")
    return site


def add_post(site: Path, name: str, date: datetime) -> None:
    (site / "posts" / f"{name}.txt").write_text(
        f"+++\ndate = {date.isoformat().replace('+00:00', 'Z')}\n+++\nPost {name}\n\nThe body of {name}.\n",
        encoding="utf-8",
    )


def env() -> dict[str, str]:
    return {**os.environ, "TEST_PUBLISHER_SECRET": SECRET}


def publisher(site: Path, *args: str) -> list[str]:
    """The command line of a ``publisher`` process for the site (on the
    PostgreSQL variant of a test, its config names the test's database)."""
    pin_state(site / "publisher.toml")
    return [sys.executable, "-m", "publisher", "--config", str(site / "publisher.toml"), *args]


def due_now(site: Path, job: str = "digest:daily") -> None:
    """Record the job's last run as a day ago: an "every minute" job is due at once."""
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        day_ago = datetime.now(timezone.utc) - timedelta(days=1)
        store.jobs.record(JobRun(job, day_ago, day_ago, day_ago, "ok", None))
    finally:
        store.close()

