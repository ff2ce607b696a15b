"""Choosing a digest's posts: what a list has not had yet, newest first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from publisher.config import load_config
from publisher.digest import next_issue
from publisher.store import StateStore

from .conftest import NOW, build, write_config

LISTS = '[lists.daily]\ntitle = "Daily"\nmax_posts = 2\n\n[lists.weekly]\ntitle = "Weekly"\n'


def _site(site_dir: Path, days: range):
    write_config(site_dir, extra=LISTS)
    for day in days:
        (site_dir / "posts" / f"p{day}.txt").write_text(
            f"+++\ndate = 2024-01-{day:02d}T10:00:00Z\n+++\nPost {day}\n\nx\n", encoding="utf-8"
        )
    report = build(site_dir)
    config = load_config(site_dir / "publisher.toml")
    return config, report.site, StateStore.open(config.state.path)


def test_next_issue_is_newest_unsent_capped(blank_site: Path) -> None:
    config, site, store = _site(blank_site, range(1, 6))
    issue = next_issue(site, config.lists["daily"], store, now=NOW)
    assert [p.title for p in issue.posts] == ["Post 5", "Post 4"]
    assert issue.number == 1
    assert issue.web_url == "https://example.org/issues/daily/1/"


def test_sent_posts_are_left_out_for_that_list_only(blank_site: Path) -> None:
    config, site, store = _site(blank_site, range(1, 6))
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    first = next_issue(site, daily, store, now=NOW)
    with store.transaction():
        store.create_issue("daily", first.number, NOW, "subject", [p.id for p in first.posts])
    second = next_issue(site, daily, store, now=NOW + timedelta(days=1))
    assert second.number == 2
    assert [p.title for p in second.posts] == ["Post 3", "Post 2"]
    # The weekly list never had them: it still gets the newest.
    assert [p.title for p in next_issue(site, weekly, store, now=NOW).posts] == [
        "Post 5", "Post 4", "Post 3", "Post 2", "Post 1"
    ]


def test_nothing_new_means_no_issue_unless_forced(blank_site: Path) -> None:
    config, site, store = _site(blank_site, range(1, 3))
    daily = config.lists["daily"]
    issue = next_issue(site, daily, store, now=NOW)
    with store.transaction():
        store.create_issue("daily", issue.number, NOW, "s", [p.id for p in issue.posts])
    assert next_issue(site, daily, store, now=NOW) is None
    preview = next_issue(site, daily, store, now=NOW, force=True)
    assert [p.title for p in preview.posts] == ["Post 2", "Post 1"]
