"""Feed sources: existing feeds fetched from a real HTTP server on 127.0.0.1.

Each test starts its own ``ThreadingHTTPServer`` on port 0 and stops it;
routes are set per test. Nothing here sleeps: the slow route waits on an
event that stopping the server sets.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from publisher import __version__
from publisher.feeds.build import check_site
from publisher.app.cli import main
from publisher.config import load_config
from publisher.content.sources import load_feed_sources
from publisher.state import CachedFetch, StateStore
from publisher.state.schema import MIGRATIONS

from .conftest import DATA, NOW, build, write_config
from .helpers.feed_server import FeedServer, Route
from .helpers.waiting import wait_for

FEEDS = DATA / "feeds"
RSS = (FEEDS / "rss2-content-encoded.xml").read_bytes()
ATOM = (FEEDS / "atom.xml").read_bytes()
RSS_TITLES = {
    "Ceasefire talks resume in Cairo",
    "Plain text & an enclosure",
    "A short note without a title, as microblogs write them: it is named by its…",
}
ATOM_TITLES = {"Rockets and rhetoric", "Only updated"}
# The fixture's one empty item, reported for every build that reads it.
RSS_ENTRY_ERROR = "entry 3: has neither a title nor any text"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    feed_server = FeedServer()
    feed_server.start()
    try:
        yield feed_server
    finally:
        feed_server.stop()


# --- routes ---------------------------------------------------------------------


def feed(body: bytes, *, etag: str | None = None, last_modified: str | None = None) -> Route:
    """A feed with validators, answering 304 when the client sends them back."""

    def route(handler) -> None:
        validators = {"ETag": etag, "Last-Modified": last_modified}
        validators = {k: v for k, v in validators.items() if v}
        if (etag and handler.headers.get("If-None-Match") == etag) or (
            last_modified and handler.headers.get("If-Modified-Since") == last_modified
        ):
            handler.reply(304, headers=validators)
            return
        handler.reply(200, body, {"Content-Type": "application/rss+xml", **validators})

    return route


def gzipped(body: bytes) -> Route:
    def route(handler) -> None:
        assert "gzip" in handler.headers.get("Accept-Encoding", "")
        handler.reply(200, gzip.compress(body, mtime=0), {"Content-Encoding": "gzip"})

    return route


def status(code: int) -> Route:
    return lambda handler: handler.reply(code, b"<html>error</html>", {"Content-Type": "text/html"})


def redirect(location: str, code: int = 301) -> Route:
    return lambda handler: handler.reply(code, b"", {"Location": location})


ENDLESS_BYTES = 50_000_000


def endless(sent: list[int]) -> Route:
    """A body with no Content-Length that would go on for 50 MB; ``sent``
    gets the bytes written before the reader hung up."""

    def route(handler) -> None:
        handler.status = 200
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()  # HTTP/1.0: the body ends when the connection closes
        chunk = b"<!-- padding -->" * 4096
        written = 0
        try:
            while written < ENDLESS_BYTES:
                handler.wfile.write(chunk)
                written += len(chunk)
        finally:
            sent.append(written)

    return route


def declared_huge(handler) -> None:
    handler.status = 200
    handler.send_response(200)
    handler.send_header("Content-Length", str(50_000_000))
    handler.end_headers()
    handler.wfile.write(b"<rss>")


def gzip_bomb(handler) -> None:
    """A few kilobytes that unpack to 20 MB."""
    handler.reply(200, gzip.compress(b"\0" * 20_000_000, mtime=0), {"Content-Encoding": "gzip"})


def slow(server: FeedServer, answered: threading.Event) -> Route:
    """Answers only when the server stops (long after any small fetch_timeout)."""

    def route(handler) -> None:
        server.stopping.wait(60)
        answered.set()
        handler.reply(200, RSS)

    return route


# --- helpers --------------------------------------------------------------------


def configure(site: Path, *sources: str, timeout: float = 5, max_bytes: int = 1_000_000) -> Path:
    """The site's config with one ``[[content.feeds]]`` table per source (``url`` or ``path``)."""
    extra = f"fetch_timeout = {timeout}\nfetch_max_bytes = {max_bytes}\n"
    for source in sources:
        key = "url" if source.startswith("http") else "path"
        extra += f'\n[[content.feeds]]\n{key} = "{source}"\n'
    return write_config(site, extra)


def titles(report) -> set[str]:
    return {post.title for post in report.site.posts}


def messages(report) -> list[str]:
    return [str(e) for e in report.errors]


def rss_titles(site: Path) -> set[str]:
    parsed = feedparser.parse((site / "feeds" / "rss.xml").read_bytes())
    assert not parsed.bozo
    return {entry.title for entry in parsed.entries}


# --- tests ----------------------------------------------------------------------


def test_conditional_get_reuses_the_stored_body(blank_site: Path, server: FeedServer) -> None:
    url = server.url("/feed.xml")
    server.routes["/feed.xml"] = feed(RSS, etag='"v1"', last_modified="Wed, 01 May 2024 12:30:00 GMT")
    configure(blank_site, url)

    first = build(blank_site)
    second = build(blank_site, now=NOW + timedelta(hours=1))

    before, after = server.requests("/feed.xml")
    assert before.headers["User-Agent"] == f"publisher/{__version__}"
    assert "If-None-Match" not in before.headers and before.status == 200
    assert after.headers["If-None-Match"] == '"v1"'
    assert after.headers["If-Modified-Since"] == "Wed, 01 May 2024 12:30:00 GMT"
    assert after.status == 304
    # The stored body is published again: same posts, byte-identical feeds.
    assert titles(first) == titles(second) == RSS_TITLES
    assert messages(second) == [f"{url}: {RSS_ENTRY_ERROR}"]
    assert second.written == ()
    assert rss_titles(blank_site) == RSS_TITLES
    # The upstream guid and link are the post's own.
    atom = feedparser.parse((blank_site / "feeds" / "atom.xml").read_bytes())
    cairo = next(e for e in atom.entries if e.title == "Ceasefire talks resume in Cairo")
    assert cairo.id == "urn:uuid:6c0a3f3e-5a57-4e0b-9d4e-2f1d3c1e0001"
    assert cairo.link == "https://other.example/2024/05/ceasefire-talks/"


def test_gzip_is_accepted_and_decoded(blank_site: Path, server: FeedServer) -> None:
    server.routes["/atom.xml"] = gzipped(ATOM)
    configure(blank_site, server.url("/atom.xml"))
    report = build(blank_site)
    assert messages(report) == []
    assert titles(report) == ATOM_TITLES
    (seen,) = server.requests("/atom.xml")
    assert seen.headers["Accept-Encoding"] == "gzip"


def test_redirects_are_followed_and_the_final_url_is_the_base(blank_site: Path, server: FeedServer) -> None:
    server.routes["/old.json"] = redirect("/new/feed.json")
    server.routes["/new/feed.json"] = feed(
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "Moved", "items": ['
        b'{"id": "1", "url": "first-post", "title": "Moved post",'
        b' "content_html": "<p><a href=\\"../about\\">About</a></p>", "date_published": "2024-01-01T00:00:00Z"}]}'
    )
    url = server.url("/old.json")
    configure(blank_site, url)
    report = build(blank_site)
    (post,) = report.site.posts
    assert post.url == server.url("/new/first-post")
    assert f'href="{server.url("/about")}"' in post.content_html
    # The post is known by the configured URL, which does not move with the redirect.
    assert post.source == f"{url}#1"


def test_too_big_bodies_are_refused_and_the_other_sources_published(blank_site: Path, server: FeedServer) -> None:
    sent: list[int] = []
    server.routes.update(
        {"/endless.xml": endless(sent), "/declared.xml": declared_huge, "/bomb.xml": gzip_bomb, "/feed.xml": feed(RSS)}
    )
    big = [server.url(p) for p in ("/endless.xml", "/declared.xml", "/bomb.xml")]
    configure(blank_site, *big, server.url("/feed.xml"), max_bytes=64_000)
    report = build(blank_site)
    wait_for(lambda: sent, what="the endless body to end")
    assert sent[0] < ENDLESS_BYTES, "read to its end instead of hanging up past the cap"
    cap = "larger than 64000 bytes; raise [content] fetch_max_bytes to accept it"
    assert messages(report) == [
        f"{big[0]}: {cap}",
        f"{big[1]}: {cap}",
        f"{big[2]}: {cap} (unpacked)",
        f"{server.url('/feed.xml')}: {RSS_ENTRY_ERROR}",
    ]
    assert titles(report) == RSS_TITLES
    assert rss_titles(blank_site) == RSS_TITLES


def test_a_failing_source_exits_1_and_the_others_are_published(
    blank_site: Path, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/broken"] = status(500)
    server.routes["/atom.xml"] = feed(ATOM)
    configure(blank_site, server.url("/broken"), server.url("/atom.xml"))
    monkeypatch.chdir(blank_site)

    result = CliRunner().invoke(main, ["build"])

    assert result.exit_code == 1, result.output
    assert f"{server.url('/broken')}: HTTP 500 Internal Server Error" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert rss_titles(blank_site) == ATOM_TITLES


def test_a_slow_source_times_out_without_holding_up_the_build(blank_site: Path, server: FeedServer) -> None:
    answered = threading.Event()
    server.routes["/slow.xml"] = slow(server, answered)
    server.routes["/atom.xml"] = feed(ATOM)
    configure(blank_site, server.url("/slow.xml"), server.url("/atom.xml"), timeout=0.5)
    report = build(blank_site)
    assert not answered.is_set(), "the build waited for the answer"
    assert messages(report) == [f"{server.url('/slow.xml')}: timed out after 0.5 s ([content] fetch_timeout)"]
    assert titles(report) == ATOM_TITLES


def test_unreachable_and_missing_sources_are_named(blank_site: Path, server: FeedServer) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{probe.getsockname()[1]}/feed.xml"
    server.routes["/sneaky.xml"] = redirect("ftp://127.0.0.1/feed.xml", 302)  # urllib alone would follow it
    server.routes["/page.html"] = lambda h: h.reply(200, b"<html><body>Hi</body></html>")
    missing, sneaky, page = (server.url(p) for p in ("/missing.xml", "/sneaky.xml", "/page.html"))
    configure(blank_site, missing, refused, sneaky, page)
    report = build(blank_site)
    assert report.site.posts == ()
    assert messages(report) == [
        f"{missing}: HTTP 404 Not Found",
        f"{refused}: connection refused",
        f"{sneaky}: HTTP 302 redirect to a non-HTTP URL refused (ftp://127.0.0.1/feed.xml)",
        f"{page}: not an RSS, Atom or JSON feed",
    ]


def test_a_failing_upstream_keeps_the_last_good_copy_published(blank_site: Path, server: FeedServer) -> None:
    url = server.url("/feed.xml")
    server.routes["/feed.xml"] = feed(RSS, etag='"v1"')
    configure(blank_site, url)
    first = build(blank_site)

    server.routes["/feed.xml"] = status(503)
    down = build(blank_site, now=NOW + timedelta(hours=1))
    assert titles(down) == titles(first) == RSS_TITLES
    assert messages(down) == [
        f"{url}: {RSS_ENTRY_ERROR}",
        f"{url}: HTTP 503 Service Unavailable (published the copy fetched 2026-11-29 12:00 UTC)",
    ]
    assert down.written == ()

    # A new body that cannot be read is not kept: the last good one still is.
    server.routes["/feed.xml"] = feed(b"<rss><channel><title>cut sho", etag='"v2"')
    garbled = build(blank_site, now=NOW + timedelta(hours=2))
    assert titles(garbled) == RSS_TITLES
    assert "published the copy fetched 2026-11-29 12:00 UTC" in messages(garbled)[-1]
    assert server.requests("/feed.xml")[-1].headers["If-None-Match"] == '"v1"'
    config = load_config(blank_site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        cached = store.fetches.get(url)
    finally:
        store.close()
    assert cached is not None and (cached.etag, cached.body) == ('"v1"', RSS)


def test_check_fetches_but_remembers_nothing(blank_site: Path, server: FeedServer) -> None:
    url = server.url("/feed.xml")
    server.routes["/feed.xml"] = feed(ATOM, etag='"v1"')
    config = load_config(configure(blank_site, url))

    store = StateStore.open(config.state.path, readonly=True)
    try:
        report = check_site(config, store=store, now=NOW)
    finally:
        store.close()
    assert titles(report) == ATOM_TITLES
    assert not config.state.path.exists()

    build(blank_site)
    server.routes["/feed.xml"] = feed(RSS, etag='"v2"')
    store = StateStore.open(config.state.path, readonly=True)
    try:
        report = check_site(config, store=store, now=NOW + timedelta(hours=1))
        assert titles(report) == RSS_TITLES
        assert store.fetches.get(url).etag == '"v1"'
    finally:
        store.close()


def test_path_sources_are_read_from_disk(blank_site: Path) -> None:
    imports = blank_site / "imports"
    imports.mkdir()
    (imports / "atom.xml").write_bytes(ATOM)
    (imports / "scheduled.json").write_text(
        '{"version": "https://jsonfeed.org/version/1.1", "title": "Later", "items": ['
        f'{{"id": "later", "title": "Not yet", "content_text": "x", "date_published": "{(NOW + timedelta(days=1)).isoformat()}"}}]}}',
        encoding="utf-8",
    )
    configure(blank_site, "imports/atom.xml", "imports/scheduled.json", "imports/missing.xml")
    report = build(blank_site)
    assert messages(report) == ["imports/missing.xml: no such file ([[content.feeds]] path)"]
    # A future entry is held back like a future post.
    assert titles(report) == ATOM_TITLES
    assert {p.source for p in report.site.posts} == {
        "imports/atom.xml#tag:atom.example,2024-06-01:/rockets",
        "imports/atom.xml#tag:atom.example,2024-05-20:/only-updated",
    }
    later = build(blank_site, now=NOW + timedelta(days=2))
    assert titles(later) == ATOM_TITLES | {"Not yet"}


def test_feed_posts_and_file_posts_publish_together(blank_site: Path, server: FeedServer) -> None:
    server.routes["/atom.xml"] = feed(ATOM)
    configure(blank_site, server.url("/atom.xml"))
    (blank_site / "posts" / "mine.txt").write_text(
        "+++\ndate = 2024-06-05T00:00:00Z\n+++\nMy own post\n\nText.\n", encoding="utf-8"
    )
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["My own post", "Rockets and rhetoric", "Only updated"]


def test_the_store_keeps_one_fetch_per_url(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        assert store.fetches.get("https://x.example/feed") is None
        with store.transaction():
            store.fetches.remember(CachedFetch("https://x.example/feed", "https://x.example/f", '"a"', None, b"1", NOW))
            store.fetches.remember(CachedFetch("https://x.example/feed", "https://x.example/f", '"b"', "d", b"2", NOW))
        assert store.fetches.get("https://x.example/feed") == CachedFetch(
            "https://x.example/feed", "https://x.example/f", '"b"', "d", b"2", NOW
        )
    finally:
        store.close()
    readonly = StateStore.open(tmp_path / "state.db", readonly=True)
    try:
        readonly.fetches.remember(CachedFetch("https://x.example/feed", "u", None, None, b"3", NOW))
        assert readonly.fetches.get("https://x.example/feed").body == b"2"
    finally:
        readonly.close()


def test_load_feed_sources_without_sources_is_empty(blank_site: Path) -> None:
    config = load_config(blank_site / "publisher.toml")
    store = StateStore.open(config.state.path, readonly=True)
    try:
        result = load_feed_sources(config, store, NOW)
    finally:
        store.close()
    assert (result.posts, result.errors) == ((), ())


def test_a_store_from_before_feed_sources_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    old.close()
    store = StateStore.open(path)
    try:
        with store.transaction():
            store.fetches.remember(CachedFetch("https://x.example/f", "https://x.example/f", None, None, b"x", NOW))
        assert store.fetches.get("https://x.example/f").body == b"x"
    finally:
        store.close()


def atom_ids(site: Path) -> dict[str, str]:
    """Each Atom entry's title -> its <id>, read from the XML itself."""
    ns = {"atom": "http://www.w3.org/2005/Atom"}
    root = etree.fromstring((site / "feeds" / "atom.xml").read_bytes())
    return {
        entry.findtext("atom:title", namespaces=ns): entry.findtext("atom:id", namespaces=ns)
        for entry in root.findall("atom:entry", ns)
    }


def test_items_whose_ids_are_not_iris_get_stable_iri_ids(blank_site: Path, tmp_path: Path) -> None:
    def site_with_sources(site: Path) -> None:
        imports = site / "imports"
        imports.mkdir()
        for name in ("jsonfeed-numbered-ids.json", "rss2-guids-not-iris.xml"):
            (imports / name).write_bytes((FEEDS / name).read_bytes())
        configure(site, "imports/jsonfeed-numbered-ids.json", "imports/rss2-guids-not-iris.xml")

    site_with_sources(blank_site)
    report = build(blank_site)
    assert report.errors == ()
    ids = atom_ids(blank_site)
    assert len(ids) == 6 and len(set(ids.values())) == 6
    for title, atom_id in ids.items():
        # RFC 4287: an atom:id is an absolute IRI, so it has a scheme.
        assert re.match(r"[A-Za-z][A-Za-z0-9+.-]*:\S", atom_id), (title, atom_id)
        assert urlsplit(atom_id).scheme, (title, atom_id)
    # Where the source's id is an IRI it is kept.
    assert ids["Item three"] == "urn:uuid:0b5e6f0e-2d1a-4c39-9a43-6a2f1e9b7c01"
    assert ids["A tag URI"] == "tag:guids.example,2024-05-03:tagged"
    assert ids["Item one"].startswith("urn:uuid:") and ids["A database row number"].startswith("urn:uuid:")
    # RSS says the made-up guid is no permalink; feed.json has the same ids.
    rss = etree.fromstring((blank_site / "feeds" / "rss.xml").read_bytes())
    guids = {item.findtext("title"): item.find("guid") for item in rss.iter("item")}
    assert guids["Item one"].text == ids["Item one"] and guids["Item one"].get("isPermaLink") == "false"
    items = json.loads((blank_site / "feeds" / "feed.json").read_text(encoding="utf-8"))["items"]
    assert {item["title"]: item["id"] for item in items} == ids

    # The same on the next build, and on a build of another copy from scratch.
    build(blank_site, now=NOW + timedelta(days=1), force=True)
    assert atom_ids(blank_site) == ids
    other = tmp_path / "other"
    other.mkdir()
    site_with_sources(other)
    build(other)
    assert atom_ids(other) == ids
