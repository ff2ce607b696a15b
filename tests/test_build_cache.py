"""What a rebuild reuses: posts read before (PostCache) and feeds whose inputs did not change.

Whatever is reused, the result must be what a build from nothing would
give: the same posts, and feed files equal to ``build_feeds`` of the site.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path

import pytest
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from publisher.content import cache, load, parsing, publishing
from publisher.feeds.build import check_site, feed_options
from publisher.config import load_config
from publisher.errors import ContentError
from publisher.feeds.formats import build_feeds, plan_feeds
from publisher.model import Post
from publisher.state.store import StateStore

from .conftest import DATA, NOW, Wall, build
from .helpers.state import state_rows

LATER = NOW + timedelta(hours=1)


@pytest.fixture
def mixed_site(sample_site: Path) -> Path:
    """The sample site (a link-blog post with excerpts, comments and a sidecar)
    plus posts in every other format: Markdown, HTML and a WordPress export."""
    posts = sample_site / "seeds"
    for name in ("yaml_front_matter_table_footnote_code.md", "title_from_first_heading.md", "toml_front_matter.md"):
        shutil.copy(DATA / "markdown" / name, posts / name)
    for name in ("jekyll_front_matter.html", "wordpress_article_with_meta_and_chrome.html"):
        shutil.copy(DATA / "html" / name, posts / name)
    shutil.copy(DATA / "wxr" / "small-site.xml", posts / "small-site.xml")
    (posts / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    return sample_site


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files parsed (not taken from the cache) from now on."""
    parsed: list[str] = []
    real = load._read

    def counting(path, shown, data, config):
        parsed.append(shown)
        return real(path, shown, data, config)

    monkeypatch.setattr(load, "_read", counting)
    return parsed


def feed_files(site: Path) -> dict[str, bytes]:
    out = site / "feeds"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def expected_feeds(site: Path, report) -> dict[str, bytes]:
    config = load_config(site / "publisher.toml")
    return build_feeds(report.site, feed_options(config))


def test_a_rebuild_parses_nothing_and_gives_the_same_posts(mixed_site: Path, reads: list[str]) -> None:
    first = build(mixed_site)
    assert reads and "seeds/broken.md" in reads
    assert len(first.site.posts) >= 8 and first.errors
    reads.clear()
    second = build(mixed_site, LATER)
    assert reads == []
    assert second.site.posts == first.site.posts  # every field of every post, from the cache
    assert [str(e) for e in second.errors] == [str(e) for e in first.errors]
    assert second.written == () and second.files == first.files
    assert feed_files(mixed_site) == expected_feeds(mixed_site, second)


def test_a_changed_file_alone_is_read_again_and_its_feeds_rewritten(mixed_site: Path, reads: list[str]) -> None:
    build(mixed_site)
    reads.clear()
    post = mixed_site / "seeds" / "title_from_first_heading.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nA new closing paragraph.\n", encoding="utf-8")
    report = build(mixed_site, LATER)
    assert reads == ["seeds/title_from_first_heading.md"]
    assert report.written and all(name in report.files for name in report.written)
    assert feed_files(mixed_site) == expected_feeds(mixed_site, report)


def test_a_changed_sidecar_is_a_change_of_its_post(sample_site: Path, reads: list[str]) -> None:
    first = build(sample_site)
    reads.clear()
    sidecar = sample_site / "seeds" / "000_876ff53b270cd303.txt.meta.toml"
    sidecar.write_text(sidecar.read_text(encoding="utf-8").replace('"Palestine"', '"Cached"'), encoding="utf-8")
    report = build(sample_site, LATER)
    assert reads == ["seeds/000_876ff53b270cd303.txt"]
    assert report.site.posts[0].tags != first.site.posts[0].tags
    assert feed_files(sample_site) == expected_feeds(sample_site, report)


def test_a_reader_option_change_reads_everything_again(sample_site: Path, reads: list[str]) -> None:
    build(sample_site)
    reads.clear()
    config = sample_site / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('timezone = "America/New_York"', 'timezone = "Asia/Tokyo"'))
    build(sample_site, LATER)
    assert reads == ["seeds/000_876ff53b270cd303.txt"]


def test_a_feed_file_removed_or_edited_by_hand_is_written_again(mixed_site: Path) -> None:
    build(mixed_site)
    feeds = mixed_site / "feeds"
    (feeds / "atom.xml").unlink()
    (feeds / "rss.xml").write_bytes(b"<rss>edited</rss>")
    report = build(mixed_site, LATER)
    assert sorted(report.written) == ["atom.xml", "rss.xml"]
    assert feed_files(mixed_site) == expected_feeds(mixed_site, report)


def test_force_serialises_and_rewrites_every_feed(mixed_site: Path) -> None:
    first = build(mixed_site)
    report = build(mixed_site, LATER, force=True)
    assert sorted(report.written) == sorted(first.files)


def test_a_lost_or_damaged_cache_costs_a_reading_and_nothing_else(mixed_site: Path, reads: list[str]) -> None:
    first = build(mixed_site)
    store = StateStore.open(mixed_site / ".publisher" / "state.db")
    with store.transaction():
        store.database.execute("UPDATE read_cache SET data = ? WHERE source = 'seeds/toml_front_matter.md'", (b"{not json",))
        store.database.execute("DELETE FROM read_cache WHERE source = 'seeds/small-site.xml'")
        store.database.execute("DELETE FROM feed_outputs")
    store.close()
    reads.clear()
    report = build(mixed_site, LATER)
    assert sorted(reads) == ["seeds/small-site.xml", "seeds/toml_front_matter.md"]
    assert report.site.posts == first.site.posts and report.written == ()


def test_files_that_are_gone_leave_the_cache(mixed_site: Path) -> None:
    build(mixed_site)
    (mixed_site / "seeds" / "small-site.xml").unlink()
    build(mixed_site, LATER)
    store = StateStore.open(mixed_site / ".publisher" / "state.db")
    sources = {row[0] for row in store.database.query("SELECT source FROM read_cache")}
    store.close()
    assert "seeds/small-site.xml" not in sources and "seeds/broken.md" in sources


def test_check_uses_the_cache_and_writes_nothing(mixed_site: Path, reads: list[str], state_backend: str) -> None:
    build(mixed_site)
    state = mixed_site / ".publisher" / "state.db"
    rows = state_rows(state)
    before = state.read_bytes() if state_backend == "sqlite" else None
    post = mixed_site / "seeds" / "toml_front_matter.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nmore\n", encoding="utf-8")
    reads.clear()
    config = load_config(mixed_site / "publisher.toml")
    store = StateStore.open(config.state.path, readonly=True)
    try:
        report = check_site(config, store=store, now=LATER)
    finally:
        store.close()
    assert reads == ["seeds/toml_front_matter.md"] and report.site.posts
    assert state_rows(state) == rows
    if state_backend == "sqlite":
        assert state.read_bytes() == before


def test_feed_digests_change_with_what_the_feed_shows(mixed_site: Path) -> None:
    report = build(mixed_site)
    config = load_config(mixed_site / "publisher.toml")
    options = feed_options(config)
    digests = {d.name: d.digest for d in plan_feeds(report.site, options)}
    assert digests == {d.name: d.digest for d in plan_feeds(report.site, options)}  # stable
    first = report.site.posts[0]
    for change in ({"title": first.title + "!"}, {"content_html": first.content_html + "<p>x</p>"}, {"tags": ("new",)}):
        site = replace(report.site, posts=(replace(first, **change), *report.site.posts[1:]))
        changed = {d.name: d.digest for d in plan_feeds(site, options)}
        assert changed["rss.xml"] != digests["rss.xml"], change
    untouched = replace(report.site, posts=(replace(first, blocks=first.blocks), *report.site.posts[1:]))
    assert {d.name: d.digest for d in plan_feeds(untouched, options)} == digests


def test_the_sample_feeds_are_unchanged_by_the_cache(tmp_path: Path, sample_site: Path) -> None:
    """A site built with a cache and one built without give the same bytes."""
    build(sample_site)
    other = tmp_path / "other"
    shutil.copytree(sample_site, other, ignore=shutil.ignore_patterns("feeds", ".publisher"))
    config = load_config(other / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        with store.transaction():
            site, _ = publishing.publish(load.load_posts(config).posts, store=store.posts, now=NOW, config=config)
    finally:
        store.close()
    assert build_feeds(site, feed_options(config)) == feed_files(sample_site)


@pytest.mark.slow
def test_files_parsed_in_worker_processes_give_what_parsing_here_gives(
    mixed_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (mixed_site / "seeds" / "linked.md").write_text(
        "---\ntitle: Linked\ndate: 2024-02-02T10:00:00Z\n---\nSee [the chart](chart.png) and ![it](img/a.png).\n",
        encoding="utf-8",
    )
    resolved_here: list[str] = []  # the posts whose links this process resolved
    real = cache.absolutize

    def counting(html: str, url: str, **options) -> str:
        resolved_here.append(url)
        return real(html, url, **options)

    monkeypatch.setattr(cache, "absolutize", counting)
    serial_site = tmp_path / "serial"
    shutil.copytree(mixed_site, serial_site)
    serial = build(serial_site)
    serially = list(resolved_here)
    resolved_here.clear()
    monkeypatch.setattr(parsing, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(parsing, "PARSE_CHUNK", 3)
    monkeypatch.setattr(parsing, "_parsers", lambda files: 2)  # even on one CPU
    parallel = build(mixed_site)
    assert parallel.site.posts == serial.site.posts
    linked = next(post for post in parallel.site.posts if post.title == "Linked")
    assert f'href="{linked.url}chart.png"' in linked.content_html
    # Parsing (in a worker or here) resolved the links of the posts whose URL
    # it could tell: publishing did not resolve them again.
    assert linked.url not in serially and linked.url not in resolved_here
    assert [str(e) for e in parallel.errors] == [str(e) for e in serial.errors]
    assert feed_files(mixed_site) == feed_files(serial_site)
    again = build(mixed_site, LATER)  # and what the workers read was cached
    assert again.site.posts == serial.site.posts and again.written == ()


def test_when_worker_processes_fail_the_files_are_parsed_here(
    mixed_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_processes(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(parsing, "_parsers", lambda files: 2)
    monkeypatch.setattr(parsing, "_start", no_processes)
    report = build(mixed_site)
    assert len(report.site.posts) >= 8 and any("broken.md" in str(e) for e in report.errors)


def test_a_chunk_whose_worker_died_is_parsed_here(mixed_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial_site = tmp_path / "serial"
    shutil.copytree(mixed_site, serial_site)
    serial = build(serial_site)
    handed: list[int] = []

    def dying(pool, config, chunk):
        handed.append(len(chunk))
        future: Future = Future()
        future.set_running_or_notify_cancel()  # taken by a worker, which then died
        future.set_exception(BrokenProcessPool("a worker died"))
        return future

    monkeypatch.setattr(parsing, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(parsing, "PARSE_CHUNK", 3)
    monkeypatch.setattr(parsing, "_parsers", lambda files: 2)
    monkeypatch.setattr(parsing, "_start", dying)
    report = build(mixed_site)
    assert len(handed) >= 2  # the files went to workers, which all died
    assert report.site.posts == serial.site.posts
    assert [str(e) for e in report.errors] == [str(e) for e in serial.errors]


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files read and hashed to find their key from now on."""
    seen: list[str] = []
    real = cache.PostCache._key

    def counting(self, shown, data, sidecar, config):
        seen.append(shown)
        return real(self, shown, data, sidecar, config)

    monkeypatch.setattr(cache.PostCache, "_key", counting)
    return seen


def test_files_unchanged_on_disk_are_not_even_read_again(mixed_site: Path, hashed: list[str], wall: Wall) -> None:
    first = build(mixed_site)
    hashed.clear()
    second = build(mixed_site, LATER)
    assert hashed == [] and second.site.posts == first.site.posts and second.written == ()


def test_a_file_changed_without_changing_its_size_or_mtime_is_still_read(
    mixed_site: Path, hashed: list[str], reads: list[str], wall: Wall
) -> None:
    build(mixed_site)
    post = mixed_site / "seeds" / "toml_front_matter.md"
    stat = post.stat()
    text = post.read_text(encoding="utf-8")
    changed = text.replace("a", "b", 1) if "a" in text else text.replace("e", "f", 1)
    assert len(changed.encode()) == len(text.encode()) and changed != text
    post.write_text(changed, encoding="utf-8")
    os.utime(post, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same size and mtime; ctime moves
    hashed.clear()
    reads.clear()
    build(mixed_site, LATER)
    assert hashed == ["seeds/toml_front_matter.md"] and reads == ["seeds/toml_front_matter.md"]


def test_a_file_written_just_before_its_reading_is_hashed_again_next_time(
    mixed_site: Path, hashed: list[str], wall: Wall
) -> None:
    build(mixed_site)
    post = mixed_site / "seeds" / "title_from_first_heading.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nmore\n", encoding="utf-8")
    changed = post.stat()
    wall.at = max(changed.st_mtime_ns, changed.st_ctime_ns) + cache._RACY_NS // 2
    build(mixed_site, LATER)  # read at once: its signature may not be trusted yet
    hashed.clear()
    wall.at = None
    build(mixed_site, LATER + timedelta(minutes=1))
    assert hashed == ["seeds/title_from_first_heading.md"]
    hashed.clear()
    build(mixed_site, LATER + timedelta(minutes=2))  # trusted now: not read again
    assert hashed == []


def test_a_touched_but_unchanged_file_is_hashed_once_not_every_build(
    mixed_site: Path, hashed: list[str], wall: Wall
) -> None:
    first = build(mixed_site)
    post = mixed_site / "seeds" / "toml_front_matter.md"
    past = time.time() - 30
    os.utime(post, (past, past))  # as `touch` or a checkout leaves it: same bytes, new times
    hashed.clear()
    second = build(mixed_site, LATER)
    assert hashed == ["seeds/toml_front_matter.md"] and second.site.posts == first.site.posts
    hashed.clear()
    build(mixed_site, LATER + timedelta(minutes=1))
    assert hashed == []


def test_a_sidecar_added_or_removed_is_a_change_of_its_post(mixed_site: Path, reads: list[str], wall: Wall) -> None:
    first = build(mixed_site)
    source = "seeds/title_from_first_heading.md"
    sidecar = mixed_site / (source + load.SIDECAR_SUFFIX)
    sidecar.write_text('tags = ["Added"]\n', encoding="utf-8")
    reads.clear()
    added = build(mixed_site, LATER)
    assert reads == [source]
    assert {p.source: p.tags for p in added.site.posts}[source] == ("Added",)
    assert feed_files(mixed_site) == expected_feeds(mixed_site, added)
    sidecar.unlink()
    reads.clear()
    removed = build(mixed_site, LATER + timedelta(minutes=1))
    assert reads == [source]
    tags = {p.source: p.tags for p in first.site.posts}
    assert {p.source: p.tags for p in removed.site.posts} == tags


def test_cached_entries_come_back_as_they_were_stored(mixed_site: Path) -> None:
    report = build(mixed_site)
    posts = report.site.posts[:3]  # an entry holds several posts where a file does (a WordPress export)
    resolved = [None, ("https://example.org/a/", None), ("https://example.org/b/", "<p>resolved</p>")]
    entry = cache._Entry("key", posts, (), failed=False, resolved=list(resolved), hashes=["h0", None, "h2"])
    again = cache._Entry.decode("key", entry.encode())
    assert again.posts == posts and again.resolved == resolved and again.hashes == ["h0", None, "h2"]
    assert not again.failed and again.errors == ()
    rejected = cache._Entry("key", (), (ContentError("seeds/broken.md", 2, "bad"),), failed=True)
    back = cache._Entry.decode("key", rejected.encode())
    assert back.failed and back.posts == () and [str(e) for e in back.errors] == [str(e) for e in rejected.errors]
    blob = entry.encode()
    for damaged in (blob[: blob.rindex(b"\x00")], blob + b"\x00<p>more</p>", blob.replace(b"\x00", b"", 1), b"{}"):
        assert cache._decoded("seeds/x.md", "key", damaged, {}) is None  # unusable: read again


def test_posts_made_from_the_cache_are_posts_as_their_class_makes_them(mixed_site: Path) -> None:
    # cache._post_of fills a Post's fields without Post.__init__.
    assert "__post_init__" not in vars(Post) and "__slots__" not in vars(Post)
    for post in build(mixed_site).site.posts:
        made = cache._post_of((f.name, getattr(post, f.name)) for f in fields(Post))
        assert made == post and hash(made) == hash(post) and made is not post
        assert replace(post, title="other") == publishing._published_copy(post, title="other")
