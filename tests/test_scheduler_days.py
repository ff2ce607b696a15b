"""The scheduler's digest across several days on the injected clock: what
each day's issue holds on a site with an archive, renames, edits and a feed
source; and a list in post mode sent "immediately"."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from .helpers.scheduling import Harness
from .helpers.sites import SECRET, add_post, scheduled_site

UTC = timezone.utc
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)


def _feed(site: Path, entries: list[tuple[str, str, datetime]]) -> None:
    items = "".join(
        f"<item><guid>https://other.example/{guid}</guid><title>{title}</title>"
        f"<link>https://other.example/{guid}</link><pubDate>{format_datetime(date)}</pubDate>"
        f"<description>About {title}.</description></item>"
        for guid, title, date in entries
    )
    (site / "other.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Other</title><link>https://other.example/</link>'
        f"<description>d</description>{items}</channel></rss>",
        encoding="utf-8",
    )


def _subjects(h: Harness) -> list[str]:
    folder = h.config.mail.outbox / "new"
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in folder.iterdir()]
    return sorted({m["Subject"] for m in messages})


@pytest.mark.slow
def test_five_days_of_a_daily_digest_on_a_500_post_site(tmp_path: Path) -> None:
    site = scheduled_site(tmp_path, backfill=None)  # "daily at 07:00", 3 subscribers, no backfill
    config = site / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            '[content]\npaths = ["posts"]\n', '[content]\npaths = ["posts"]\n\n[[content.feeds]]\npath = "other.xml"\n'
        ),
        encoding="utf-8",
    )
    _feed(site, [("old", "An old entry", datetime(2025, 6, 1, tzinfo=UTC))])
    for n in range(499):  # with make_site's post: 500
        add_post(site, f"archive-{n:03d}", datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=n))
    h = Harness(site, MONDAY + timedelta(hours=6))
    try:
        h.look_at(MONDAY + timedelta(hours=6))  # the scheduler first sees the list (and its job)
        # Day 1: the new list's first slot sends nothing of the archive.
        h.look_at(MONDAY + timedelta(hours=7, seconds=1))
        assert h.issues() == [] and h.messages() == 0
        assert h.run().message == "nothing to send: no new posts since the list was created"

        # Day 2: three new posts, one issue of three.
        for name in ("b", "c", "d"):
            add_post(site, name, MONDAY + timedelta(days=1, hours=5))
        h.look_at(MONDAY + timedelta(days=1, hours=7, seconds=1))
        assert h.issues() == [(1, 3, "sent")] and h.messages() == 3

        # Day 3: nothing new, nothing sent.
        h.look_at(MONDAY + timedelta(days=2, hours=7, seconds=1))
        assert h.issues() == [(1, 3, "sent")] and h.messages() == 3

        # Day 4: a post's file renamed (into a folder), another post edited: nothing sent.
        (site / "posts" / "2026").mkdir()
        shutil.move(site / "posts" / "b.txt", site / "posts" / "2026" / "post-b.txt")
        edited = site / "posts" / "c.txt"
        edited.write_text(edited.read_text(encoding="utf-8") + "\nAn update, later.\n", encoding="utf-8")
        h.look_at(MONDAY + timedelta(days=3, hours=7, seconds=1))
        assert h.issues() == [(1, 3, "sent")] and h.messages() == 3
        assert h.run().message == "nothing to send: no new posts since issue 1"

        # Day 5: one new post and one new entry of the imported feed: one issue of two.
        add_post(site, "e", MONDAY + timedelta(days=4, hours=5))
        _feed(
            site,
            [("old", "An old entry", datetime(2025, 6, 1, tzinfo=UTC)), ("new", "Their news", MONDAY + timedelta(days=4, hours=6))],
        )
        h.look_at(MONDAY + timedelta(days=4, hours=7, seconds=1))
        assert h.issues() == [(1, 3, "sent"), (2, 2, "sent")] and h.messages() == 6
        assert _subjects(h) == ["Test Site: Post d and 2 more", "Test Site: Their news and 1 more"]
    finally:
        h.close()


@pytest.mark.slow
def test_a_list_in_post_mode_sends_each_new_post_within_a_build_cycle(tmp_path: Path) -> None:
    site = scheduled_site(
        tmp_path, schedule="immediately", build="every 10 minutes", list_keys='mode = "post"\n', backfill=None
    )
    h = Harness(site, MONDAY + timedelta(hours=6))
    try:
        h.look_at(MONDAY + timedelta(hours=6))
        add_post(site, "first", MONDAY + timedelta(hours=6, minutes=2))
        add_post(site, "second", MONDAY + timedelta(hours=6, minutes=4))
        h.look_at(MONDAY + timedelta(hours=6, minutes=10, seconds=1))
        # One issue per post, oldest first, each to the 3 subscribers, its subject the post's title.
        assert h.issues() == [(1, 1, "sent"), (2, 1, "sent")] and h.messages() == 6
        assert _subjects(h) == ["Post first", "Post second"]
        folder = h.config.mail.outbox / "new"
        bodies = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in folder.iterdir()]
        first = next(m for m in bodies if m["Subject"] == "Post first")
        assert "The body of first." in first.get_body(("plain",)).get_content()  # the post in full

        # The same ledger as a digest: nothing is sent twice.
        h.look_at(MONDAY + timedelta(hours=6, minutes=20, seconds=1))
        assert h.messages() == 6
        add_post(site, "third", MONDAY + timedelta(hours=6, minutes=25))
        h.look_at(MONDAY + timedelta(hours=6, minutes=30, seconds=1))
        assert h.issues()[-1] == (3, 1, "sent") and h.messages() == 9
    finally:
        h.close()


def test_immediately_is_the_build_schedule_and_status_says_so(tmp_path: Path) -> None:
    from publisher.app.scheduler import jobs_of
    from publisher.config import load_config

    site = scheduled_site(tmp_path, schedule="immediately", build="every 10 minutes", list_keys='mode = "post"\n')
    jobs = {job.name: job for job in jobs_of(load_config(site / "publisher.toml"))}
    digest = jobs["digest:daily"]
    assert digest.schedule.text == "immediately, at each build: every 10 minutes"
    moment = MONDAY + timedelta(hours=6, minutes=3)
    assert digest.schedule.next_slot(moment, UTC) == jobs["build"].schedule.next_slot(moment, UTC)

    lone = scheduled_site(tmp_path / "lone", schedule="immediately")  # no [jobs] build: every minute
    (job,) = jobs_of(load_config(lone / "publisher.toml"))
    assert job.schedule.next_slot(moment, UTC) == moment + timedelta(minutes=1)
