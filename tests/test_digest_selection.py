"""What goes into an issue: the posts new since the previous issue's
cut-off, from every source, each once, whatever happens to the files.

Real sites in tmp_path, the command line on a stepped clock, the outbox
transport read back with Python's email parser.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.mail.digest import ListHistory, new_posts
from publisher.model import DigestList, Post
from publisher.state.store import StateStore

from .conftest import NOW, SteppedClock, invoke
from .helpers.sites import SECRET, make_site
from .helpers.wxr_factory import export, item

UTC = timezone.utc
T0 = NOW  # the list is made (the first build)


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)


def _site(tmp_path: Path, *, list_keys: str = "", feed: bool = False, archive: int = 0) -> Path:
    """make_site's site (2 subscribers, outbox) without backfill, an
    archive of ``archive`` old posts, and optionally a feed source."""
    site = make_site(tmp_path / "site", None, 2, backfill=None)
    config = site / "publisher.toml"
    text = config.read_text(encoding="utf-8")
    if feed:
        text = text.replace(
            '[content]\npaths = ["posts"]\n',
            '[content]\npaths = ["posts"]\n\n[[content.feeds]]\npath = "other.xml"\nname = "Other"\n',
        )
        _feed(site, [])
    config.write_text(text + list_keys, encoding="utf-8")
    for n in range(archive):
        _post(site, f"old-{n}", f"Archive post {n}", datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=n))
    return site


def _post(site: Path, name: str, title: str, date: datetime | None, body: str = "Some text.") -> None:
    front = f"+++\ndate = {date.isoformat().replace('+00:00', 'Z')}\n+++\n" if date else ""
    (site / "posts" / f"{name}.txt").write_text(f"{front}{title}\n\n{body}\n", encoding="utf-8")


def _feed(site: Path, entries: list[tuple[str, str, datetime]]) -> None:
    """An RSS file of (guid, title, date) entries, the site's feed source."""
    items = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://other.example/{guid}/</link>"
        f"<pubDate>{format_datetime(date)}</pubDate><description>About {title}.</description></item>"
        for guid, title, date in entries
    )
    (site / "other.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Other</title>'
        f"<link>https://other.example/</link><description>d</description>{items}</channel></rss>",
        encoding="utf-8",
    )


def _run(site: Path, moment: datetime, *args: str):
    result = invoke("--config", str(site / "publisher.toml"), *args, clock=SteppedClock(moment))
    assert result.exit_code in (0, 1), result.output + result.stderr
    return result


def _outbox(site: Path) -> list[email.message.EmailMessage]:
    folder = site / "outbox" / "new"
    files = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns) if folder.exists() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def _text(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def _issues(site: Path, list_name: str = "daily") -> list[list[str]]:
    """The titles of the posts of each issue of the list, by issue, as the store recorded them."""
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path, readonly=True)
    try:
        records = store.posts.records()
        rows = store.database.query(
            """SELECT i.number, p.post_id FROM issues i JOIN issue_posts p ON p.issue_id = i.id
               WHERE i.list = ? ORDER BY i.number, p.position""",
            (list_name,),
        )
    finally:
        store.close()
    by_guid = {record.guid: source for source, record in records.items()}
    issues: dict[int, list[str]] = {}
    for number, guid in rows:
        issues.setdefault(number, []).append(by_guid[guid])
    return list(issues.values())


# --- a new list, an archive, an import ------------------------------------------


def test_a_new_list_on_a_site_with_an_archive_sends_nothing_old(tmp_path: Path) -> None:
    site = _site(tmp_path, archive=30)
    _run(site, T0, "build")  # the list appears: created now
    result = _run(site, T0 + timedelta(days=1), "send")
    assert "no new posts since the list was created" in result.stdout
    assert _outbox(site) == [] and _issues(site) == []

    _post(site, "new", "A new post", T0 + timedelta(days=1, hours=2))
    result = _run(site, T0 + timedelta(days=1, hours=3), "send")
    assert "Issue 1 of 'daily': 2 sent" in result.stdout
    assert _issues(site) == [["posts/new.txt"]]
    assert "A new post" in _text(_outbox(site)[0]) and "Archive post" not in _text(_outbox(site)[0])


def test_a_wordpress_import_after_the_list_exists_sends_nothing_old(tmp_path: Path) -> None:
    site = _site(tmp_path)
    _run(site, T0, "build")
    (site / "posts" / "a.txt").unlink()
    items = [
        item(n, f"Imported {n}", date_gmt=f"2023-{1 + n % 12:02d}-{1 + n % 28:02d} 10:00:00") for n in range(1, 41)
    ]
    (site / "posts" / "export.xml").write_bytes(export(items))
    build = _run(site, T0 + timedelta(hours=1), "build")
    assert "Built 40 posts" in build.stdout
    result = _run(site, T0 + timedelta(days=1), "send")
    assert "Nothing to send" in result.stdout and _outbox(site) == []


def test_backfill_gives_a_first_issue_the_newest_posts_and_only_a_first(tmp_path: Path) -> None:
    site = _site(tmp_path, archive=5)
    _run(site, T0, "build")
    result = _run(site, T0 + timedelta(hours=1), "send", "--backfill", "2")
    assert "Issue 1 of 'daily': 2 sent" in result.stdout
    assert _issues(site) == [["posts/old-4.txt", "posts/old-3.txt"]]
    again = invoke(
        "--config", str(site / "publisher.toml"), "send", "--list", "daily", "--backfill", "2",
        clock=SteppedClock(T0 + timedelta(hours=2)),
    )
    assert again.exit_code == 2
    assert "list 'daily' already has issues; --backfill is for a list's first issue" in again.stderr
    assert len(_issues(site)) == 1


def test_the_backfill_key_is_what_send_and_the_preview_use(tmp_path: Path) -> None:
    site = _site(tmp_path, archive=5, list_keys="backfill = 3\n")
    _run(site, T0, "build")
    preview = _run(site, T0 + timedelta(hours=1), "digest")
    assert "issue 1: 3 posts" in preview.stdout
    _run(site, T0 + timedelta(hours=1), "send")
    assert _issues(site) == [["posts/old-4.txt", "posts/old-3.txt", "posts/old-2.txt"]]


# --- each post once -------------------------------------------------------------


def test_beyond_max_posts_the_rest_are_links_and_the_next_issue_never_carries_them(tmp_path: Path) -> None:
    site = _site(tmp_path, list_keys="max_posts = 2\n")
    _run(site, T0, "build")
    for n in range(5):
        _post(site, f"p{n}", f"Story number {n}", T0 + timedelta(hours=1, minutes=n))
    _run(site, T0 + timedelta(hours=2), "send")
    (first, _) = _outbox(site)
    html = first.get_body(("html",)).get_content()
    text = _text(first)
    assert "And 3 more" in html and "And 3 more:" in text
    # The newest two in full (their read-more links), the other three as title links.
    assert html.count("Read more") == 2
    for n in range(5):
        assert f"Story number {n}" in html and f"https://example.org/2026/11/story-number-{n}/" in html
    assert first["Subject"] == "Test Site: Story number 4 and 4 more"
    assert len(_issues(site)[0]) == 5  # all five are the issue's: the cut-off moved past them

    result = _run(site, T0 + timedelta(days=1), "send")
    assert "no new posts since issue 1" in result.stdout and len(_outbox(site)) == 2


def test_an_edited_post_is_not_mailed_again_and_a_new_one_is(tmp_path: Path) -> None:
    site = _site(tmp_path)
    _run(site, T0, "build")
    _post(site, "story", "A story", T0 + timedelta(hours=1))
    _run(site, T0 + timedelta(hours=2), "send")
    _post(site, "story", "A story, corrected", T0 + timedelta(hours=1), body="Corrected text.")
    result = _run(site, T0 + timedelta(days=1), "send")
    assert "no new posts since issue 1" in result.stdout
    _post(site, "next", "The next story", T0 + timedelta(days=1, hours=1))
    _run(site, T0 + timedelta(days=2), "send")
    assert _issues(site) == [["posts/story.txt"], ["posts/next.txt"]]


def test_a_backdated_post_first_seen_after_the_cutoff_is_mailed_once(tmp_path: Path) -> None:
    site = _site(tmp_path)
    _run(site, T0, "build")
    _post(site, "first", "First", T0 + timedelta(hours=1))
    sent = T0 + timedelta(days=3)
    _run(site, sent, "send")  # issue 1; cut-off: `sent`
    # Written two days before the cut-off, published after it: within backdated (7 days), so new.
    _post(site, "late", "Written earlier", sent - timedelta(days=2))
    # Dated a month before the cut-off (an old post restored): not new.
    _post(site, "restored", "Restored from a backup", sent - timedelta(days=30))
    _run(site, sent + timedelta(days=1), "send")
    result = _run(site, sent + timedelta(days=2), "send")
    assert "no new posts since issue 2" in result.stdout
    assert _issues(site) == [["posts/first.txt"], ["posts/late.txt"]]


def test_an_undated_post_counts_from_when_it_was_first_seen(tmp_path: Path) -> None:
    site = _site(tmp_path)
    _run(site, T0, "build")
    _post(site, "undated", "No date given", None)
    _run(site, T0 + timedelta(hours=1), "build")  # first seen (and so dated) now
    _run(site, T0 + timedelta(days=1), "send")
    _run(site, T0 + timedelta(days=2), "send")
    assert _issues(site) == [["posts/undated.txt"]]


# --- every source, on equal terms, through one choice ---------------------------------


def test_preview_and_send_choose_the_same_posts_from_files_and_a_feed_source(tmp_path: Path) -> None:
    site = _site(tmp_path, feed=True)
    _run(site, T0, "build")
    _post(site, "ours", "Our own post", T0 + timedelta(hours=1))
    _feed(site, [("x1", "Their post", T0 + timedelta(hours=2))])
    moment = T0 + timedelta(hours=3)
    preview = _run(site, moment, "digest", "--out", str(tmp_path / "preview"))
    assert "issue 1: 2 posts" in preview.stdout
    previewed = email.message_from_bytes((tmp_path / "preview" / "daily-1.eml").read_bytes(), policy=email.policy.default)
    _run(site, moment, "send")
    sent = _outbox(site)[0]
    titles = ("Our own post", "Their post")
    assert [t for t in titles if t in _text(previewed)] == [t for t in titles if t in _text(sent)] == list(titles)
    assert previewed["Subject"] == sent["Subject"]
    assert sorted(_issues(site)[0]) == ["other.xml#https://other.example/x1", "posts/ours.txt"]


def test_an_imported_entry_that_drops_out_and_comes_back_is_not_mailed_again(tmp_path: Path) -> None:
    site = _site(tmp_path, feed=True)
    _run(site, T0, "build")
    entry = ("x1", "Their post", T0 + timedelta(hours=1))
    _feed(site, [entry])
    _run(site, T0 + timedelta(hours=2), "send")
    _feed(site, [])  # gone from the upstream feed
    _run(site, T0 + timedelta(days=1), "build")
    _feed(site, [entry, ("x2", "Their next post", T0 + timedelta(days=1, hours=1))])  # back, with a new one
    _run(site, T0 + timedelta(days=2), "send")
    assert _issues(site) == [["other.xml#https://other.example/x1"], ["other.xml#https://other.example/x2"]]


# --- the rule itself, pure -------------------------------------------------------------


def _p(source: str, date: datetime, post_id: str | None = None) -> Post:
    return Post(source=source, title=source, content_html="", date=date, id=post_id or source)


def test_the_rule_of_new_posts() -> None:
    since = datetime(2026, 5, 10, 7, tzinfo=UTC)
    daily = DigestList(name="daily", title="Daily")
    posts = (  # newest first, as a site's posts are
        _p("sent-before", since + timedelta(hours=2)),
        _p("dated-after", since + timedelta(hours=1)),
        _p("old-seen-before", since - timedelta(days=1)),
        _p("late-within", since - timedelta(days=6)),
        _p("late-beyond", since - timedelta(days=8)),
    )
    first_seen = {
        "dated-after": since + timedelta(hours=1),
        "late-within": since + timedelta(hours=3),
        "late-beyond": since + timedelta(hours=3),
        "old-seen-before": since - timedelta(days=1),
    }
    history = ListHistory(since, first=False, sent=frozenset({"sent-before"}))
    chosen = new_posts(posts, daily, history, first_seen, now=since + timedelta(days=1))
    assert [p.source for p in chosen] == ["dated-after", "late-within"]
    # Backfill, for a first issue only, adds the newest posts that are not new.
    first = ListHistory(since, first=True, sent=frozenset())
    chosen = new_posts(posts, daily, first, first_seen, now=since + timedelta(days=1), backfill=1)
    assert [p.source for p in chosen] == ["sent-before", "dated-after", "old-seen-before", "late-within"]
    assert new_posts(posts, daily, history, first_seen, now=since, backfill=1) == new_posts(
        posts, daily, history, first_seen, now=since
    )


@pytest.mark.sqlite_only  # an old SQLite file, made by hand
def test_a_store_from_before_cutoffs_dates_each_list_from_its_first_issue(tmp_path: Path) -> None:
    import sqlite3

    from publisher.state.schema import MIGRATIONS

    path = tmp_path / "state.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:9]):  # the schema before migration 10
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
        old.execute(f"PRAGMA user_version = {number + 1}")
    for number, created in ((1, T0), (2, T0 + timedelta(days=1))):
        old.execute(
            "INSERT INTO issues (list, number, created, subject) VALUES ('daily', ?, ?, 's')", (number, created.isoformat())
        )
    old.close()
    store = StateStore.open(path)
    try:
        assert store.issues.list_created("daily") == T0
        assert store.issues.last_cutoff("daily") == T0 + timedelta(days=1)
        assert store.issues.list_created("weekly") is None and store.issues.last_cutoff("weekly") is None
    finally:
        store.close()


def test_a_flood_of_new_posts_lists_the_first_hundred_and_links_the_site_for_the_rest(tmp_path: Path) -> None:
    site = _site(tmp_path, list_keys="max_posts = 3\n")
    _run(site, T0, "build")
    for n in range(130):
        _post(site, f"p{n:03d}", f"Flood {n:03d}", T0 + timedelta(minutes=1 + n))
    _run(site, T0 + timedelta(hours=3), "send")
    message = _outbox(site)[0]
    html, text = message.get_body(("html",)).get_content(), _text(message)
    assert "And 127 more" in html and "And 127 more:" in text
    assert ">Flood 027</a>" in html and ">Flood 026</a>" not in html  # 3 in full, 100 links, newest first
    assert re.search(r'And 27 more <a href="https://example.org/"[^>]*>on the site</a>', html)
    assert "And 27 more on the site:" in text
    assert len(_issues(site)[0]) == 130
