"""The build holds the state store's write lock only while it writes to the store.

A build runs in a thread and is held at a chosen step by wrapping one of
the build's own functions with one that waits for a ``threading.Event``:
no test sleeps or depends on timing. While a build makes its feeds another
connection writes at once; two builds of a new post that meet where
identities are committed agree on its id, as does a build whose post
records another process changed while it made the feeds; a build that
dies is repaired by the next one, wherever it died.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from publisher.feeds import build as build_module
from publisher.feeds.build import BuildReport, feed_options
from publisher.config import load_config
from publisher.feeds.formats import build_feeds
from publisher.mail.subscribers import add_subscriber
from publisher.state import Database, PostRecord, StateStore
from publisher.state.posts import SqlBuildRepository

from .conftest import NOW, build

LATER = NOW + timedelta(hours=1)
# The longest a test waits for an event before it fails; no test waits this long when it passes.
WAIT = 60


class BuildThread(threading.Thread):
    """A build run in a thread, keeping its report or its exception."""

    def __init__(self, run: Callable[[], BuildReport]):
        super().__init__(daemon=True)
        self._run = run
        self.report: BuildReport | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = self._run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc


def _post(site: Path, name: str, title: str) -> None:
    # No date: a new post is dated when it is first seen, and so is its id.
    (site / "posts" / name).write_text(f"{title}\n\nThe text of {title}.\n", encoding="utf-8")


def _state(site: Path) -> Path:
    return load_config(site / "publisher.toml").state.path


def _feed_files(site: Path) -> dict[str, bytes]:
    """The feeds as a reader sees them (no temporary dot-files)."""
    out = site / "feeds"
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _temporaries(site: Path) -> list[Path]:
    return list((site / "feeds").rglob("*.tmp"))


def _expected_feeds(site: Path, report: BuildReport) -> dict[str, bytes]:
    return build_feeds(report.site, feed_options(load_config(site / "publisher.toml")))


def _rss_guids(site: Path) -> list[str]:
    root = etree.parse(str(site / "feeds" / "rss.xml"))
    return [guid.text for guid in root.iterfind("./channel/item/guid")]


def _renders_through(monkeypatch: pytest.MonkeyPatch, before_render: Callable[[str], None]) -> None:
    """Make the build call ``before_render(name)`` before it makes each feed."""
    plain = build_module._documents

    def documents(config, site, cache):
        def render_of(document):
            def render() -> bytes:
                before_render(document.name)
                return document.render()

            return render

        return [replace(document, render=render_of(document)) for document in plain(config, site, cache)]

    monkeypatch.setattr(build_module, "_documents", documents)


def test_while_a_build_makes_the_feeds_another_connection_writes_without_waiting(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _post(blank_site, "a.txt", "First post")
    build(blank_site)
    _post(blank_site, "b.txt", "Second post")
    rendering, release = threading.Event(), threading.Event()

    def held(name: str) -> None:
        rendering.set()
        assert release.wait(WAIT), "the test never let the build go on"

    _renders_through(monkeypatch, held)
    builder = BuildThread(lambda: build(blank_site, LATER))
    builder.start()
    try:
        assert rendering.wait(WAIT), f"the build never made a feed: {builder.error!r}"
        # A web request's write, with a busy timeout far shorter than any
        # build: it fails with "database is locked" if the build holds the lock.
        db = _state(blank_site)
        other = StateStore.on(Database(sqlite3.connect(db, timeout=0.1, isolation_level=None), str(db)))
        try:
            subscriber, new = add_subscriber(other.subscribers, "reader@example.net", "Reader", ["daily"], source="web", now=LATER)
        finally:
            other.close()
    finally:
        release.set()
        builder.join(WAIT)
    assert not builder.is_alive()
    assert builder.error is None, builder.error
    report = builder.report
    assert report is not None
    assert new and subscriber.lists == ("daily",)
    assert {"rss.xml", "atom.xml", "feed.json"} <= set(report.written)
    assert _feed_files(blank_site) == _expected_feeds(blank_site, report)
    store = StateStore.open(db)
    try:
        assert store.subscribers.find("reader@example.net") is not None
        committed = store.posts.recall("posts/b.txt")
        assert committed is not None and committed.guid in _rss_guids(blank_site)
        assert store.builds.last() is not None and store.builds.last().finished == LATER
    finally:
        store.close()


def test_two_builds_of_a_new_post_that_meet_where_identities_are_committed_agree_on_its_id(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _post(blank_site, "new.txt", "A new post")
    computed, go_on = threading.Event(), threading.Event()
    held_site = []
    plain = build_module.publish

    def publish(*args, **kwargs):
        site, errors = plain(*args, **kwargs)
        if threading.current_thread() is first and not held_site:
            # The first build has worked out identities and not committed them.
            held_site.append(site)
            computed.set()
            assert go_on.wait(WAIT), "the test never let the build go on"
        return site, errors

    monkeypatch.setattr(build_module, "publish", publish)
    first = BuildThread(lambda: build(blank_site, NOW))
    first.start()
    try:
        assert computed.wait(WAIT), f"the first build never worked out identities: {first.error!r}"
        # A day later by its clock: a post with no date would get another id.
        second = build(blank_site, NOW + timedelta(days=1))
    finally:
        go_on.set()
        first.join(WAIT)
    assert not first.is_alive()
    assert first.error is None, first.error
    assert first.report is not None
    (minted,) = [post.id for post in second.site.posts]
    (seen_first,) = [post.id for post in held_site[0].posts]
    assert seen_first != minted, "the builds did not race: the test shows nothing"
    assert [post.id for post in first.report.site.posts] == [minted]
    store = StateStore.open(_state(blank_site))
    try:
        records = store.posts.records()
    finally:
        store.close()
    assert list(records) == ["posts/new.txt"] and records["posts/new.txt"].guid == minted
    assert _rss_guids(blank_site) == [minted]
    assert _feed_files(blank_site) == _expected_feeds(blank_site, first.report)


def test_post_records_another_process_changes_while_a_build_makes_the_feeds_are_respected(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check inside the write transaction: a process that does not take
    the build's lock (an older publisher, a repair by hand) records the new
    post while the build makes its feeds. The build keeps that record's id
    and makes its feeds again from it."""
    _post(blank_site, "new.txt", "A new post")
    rendering, release = threading.Event(), threading.Event()
    renders: list[str] = []

    def held(name: str) -> None:
        renders.append(name)
        rendering.set()
        assert release.wait(WAIT), "the test never let the build go on"

    _renders_through(monkeypatch, held)
    builder = BuildThread(lambda: build(blank_site, NOW))
    builder.start()
    theirs = "tag:example.org,2020-01-01:/elsewhere/"
    try:
        assert rendering.wait(WAIT), f"the build never made a feed: {builder.error!r}"
        other = StateStore.open(_state(blank_site))
        try:
            with other.transaction():
                assert other.posts.recall("posts/new.txt") is None  # nothing committed before the feeds are made
                other.posts.remember(PostRecord("posts/new.txt", theirs, "elsewhere", NOW, "their hash", NOW))
        finally:
            other.close()
    finally:
        release.set()
        builder.join(WAIT)
    assert not builder.is_alive()
    assert builder.error is None, builder.error
    report = builder.report
    assert report is not None
    assert [post.id for post in report.site.posts] == [theirs]
    made = len(report.files)
    assert len(renders) == 2 * made, "the feeds were not made again"
    assert _rss_guids(blank_site) == [theirs]
    assert _feed_files(blank_site) == _expected_feeds(blank_site, report)
    assert _temporaries(blank_site) == []
    store = StateStore.open(_state(blank_site))
    try:
        assert store.posts.recall("posts/new.txt").guid == theirs
    finally:
        store.close()


@pytest.mark.parametrize("dies", ["making the feeds", "renaming the feeds into place", "recording the feeds written"])
def test_a_build_that_dies_is_repaired_by_the_next(blank_site: Path, monkeypatch: pytest.MonkeyPatch, dies: str) -> None:
    """Before the identities are committed nothing is; after, they stand,
    and the next build writes the feeds they give (the feeds are derived
    data). An exception where a kill would land stands in for the kill."""
    _post(blank_site, "a.txt", "First post")
    build(blank_site)
    db = _state(blank_site)
    store = StateStore.open(db)
    try:
        outputs, last = store.builds.feed_outputs(), store.builds.last()
    finally:
        store.close()
    before = _feed_files(blank_site)
    _post(blank_site, "b.txt", "Second post")

    class Died(Exception):
        pass

    def die(*args: object) -> None:
        raise Died(dies)

    if dies == "making the feeds":
        _renders_through(monkeypatch, die)
    elif dies == "renaming the feeds into place":
        monkeypatch.setattr(build_module.StagedFiles, "commit", die)  # the feeds staged are left, as a kill leaves them
    else:
        monkeypatch.setattr(SqlBuildRepository, "remember_feed_outputs", die)
    with pytest.raises(Died):
        build(blank_site, LATER)
    monkeypatch.undo()

    store = StateStore.open(db)
    try:
        committed = store.posts.recall("posts/b.txt")
        assert store.builds.feed_outputs() == outputs and store.builds.last() == last
    finally:
        store.close()
    if dies == "making the feeds":
        assert committed is None and _feed_files(blank_site) == before and _temporaries(blank_site) == []
    elif dies == "renaming the feeds into place":
        assert committed is not None and _feed_files(blank_site) == before and _temporaries(blank_site)
    else:
        assert committed is not None and committed.guid in _rss_guids(blank_site)

    report = build(blank_site, LATER + timedelta(hours=1))
    new_id = {p.source: p.id for p in report.site.posts}["posts/b.txt"]
    assert committed is None or new_id == committed.guid
    assert new_id in _rss_guids(blank_site)
    assert _feed_files(blank_site) == _expected_feeds(blank_site, report)
    assert _temporaries(blank_site) == []
    again = build(blank_site, LATER + timedelta(hours=2))
    assert again.written == () and again.site.posts == report.site.posts
