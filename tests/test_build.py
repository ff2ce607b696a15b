"""The build as a whole: stale feeds removed, the stylesheet, the WebSub ping."""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

from .conftest import build, write_config


def _post(site: Path, name: str, tags: str = "[]") -> Path:
    path = site / "posts" / name
    path.write_text(f"+++\ndate = 2024-01-01T10:00:00Z\ntags = {tags}\n+++\n{name}\n\nx\n", encoding="utf-8")
    return path


def test_feeds_no_longer_produced_are_removed_and_others_kept(blank_site: Path) -> None:
    post = _post(blank_site, "a.txt", '["Gaza"]')
    build(blank_site)
    feeds = blank_site / "feeds"
    assert (feeds / "tags" / "gaza.xml").is_file()
    mine = feeds / "tags" / "README.txt"
    mine.write_text("a file of the user's own")
    post.write_text(post.read_text().replace('["Gaza"]', '["Lebanon"]'))
    report = build(blank_site)
    assert sorted(report.removed) == ["tags/gaza.atom.xml", "tags/gaza.json", "tags/gaza.xml"]
    assert not (feeds / "tags" / "gaza.xml").exists()
    assert (feeds / "tags" / "lebanon.xml").is_file()
    assert mine.read_text() == "a file of the user's own"


def test_stylesheet_is_written_and_referenced(blank_site: Path) -> None:
    write_config(blank_site, extra="[feeds]\nstylesheet = true\n")
    _post(blank_site, "a.txt")
    build(blank_site)
    feeds = blank_site / "feeds"
    xsl = etree.XSLT(etree.parse(str(feeds / "feed.xsl")))
    for name in ("rss.xml", "atom.xml"):
        text = (feeds / name).read_text()
        assert '<?xml-stylesheet type="text/xsl" href="/feeds/feed.xsl"?>' in text
        page = xsl(etree.parse(str(feeds / name)))
        html = str(page)
        assert "<h1>Test Site</h1>" in html and ">a.txt</a>" in html, name
    # Turned off again: the file and the references go.
    write_config(blank_site)
    build(blank_site)
    assert not (feeds / "feed.xsl").exists()
    assert "xml-stylesheet" not in (feeds / "rss.xml").read_text()


def test_site_stylesheet_overrides_the_default(blank_site: Path) -> None:
    write_config(blank_site, extra="[feeds]\nstylesheet = true\n")
    (blank_site / "templates").mkdir()
    custom = b'<?xml version="1.0"?><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>'
    (blank_site / "templates" / "feed.xsl").write_bytes(custom)
    _post(blank_site, "a.txt")
    build(blank_site)
    assert (blank_site / "feeds" / "feed.xsl").read_bytes() == custom


class _Hub(BaseHTTPRequestHandler):
    pings: list[dict[str, list[str]]] = []
    status = 204

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers["Content-Length"])
        type(self).pings.append(urllib.parse.parse_qs(self.rfile.read(length).decode()))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub():
    _Hub.pings = []
    _Hub.status = 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_hub_is_pinged_for_changed_feeds_only(blank_site: Path, hub) -> None:
    url = f"http://127.0.0.1:{hub.server_address[1]}/hub"
    write_config(blank_site, extra=f'[feeds]\nhub = "{url}"\n')
    _post(blank_site, "a.txt")
    report = build(blank_site)
    assert report.warnings == ()
    pinged = sorted(p["hub.url"][0] for p in _Hub.pings)
    assert pinged == sorted(f"https://example.org/feeds/{name}" for name in report.written)
    assert all(p["hub.mode"] == ["publish"] for p in _Hub.pings)
    _Hub.pings.clear()
    build(blank_site)
    assert _Hub.pings == []


def test_hub_failure_is_a_warning_not_a_failed_build(blank_site: Path, hub) -> None:
    _Hub.status = 500
    url = f"http://127.0.0.1:{hub.server_address[1]}/hub"
    write_config(blank_site, extra=f'[feeds]\nhub = "{url}"\n')
    _post(blank_site, "a.txt")
    report = build(blank_site)
    assert report.errors == ()
    assert report.warnings and all("HTTP 500" in w for w in report.warnings)
    assert (blank_site / "feeds" / "rss.xml").is_file()


@pytest.mark.slow
def test_hostile_post_yields_clean_feeds(blank_site: Path) -> None:
    hostile = (
        "---\ntitle: \"Hostile \\x07<script>alert('t')</script>\"\ndate: 2024-01-01T00:00:00Z\n---\n"
        "<script>alert(1)</script>\n\n"
        '<img src="x.png" onerror="alert(2)">\n\n'
        '<a href="javascript:alert(3)">click</a> <a href="JaVaScRiPt:alert(4)">again</a>\n\n'
        "<iframe src=\"https://evil.example/\"></iframe><style>p{}</style>\n\n"
        "Bell \x07 escape \x1b vertical \x0b.\n\n" + "z" * 10_000_000 + "\n"
    )
    (blank_site / "posts" / "hostile.md").write_text(hostile, encoding="utf-8")
    _post(blank_site, "fine.txt")
    report = build(blank_site)
    assert report.errors == ()
    assert len(report.site.posts) == 2
    import feedparser

    for name in ("rss.xml", "atom.xml"):
        data = (blank_site / "feeds" / name).read_bytes()
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, name
        assert len(parsed.entries) == 2
        html = next(e for e in parsed.entries if e.title.startswith("Hostile")).content[0].value
        for bad in ("<script", "onerror", "javascript:", "<iframe", "<style", "\x07", "\x1b", "\x0b"):
            assert bad not in html.lower(), (name, bad)
        assert 'src="https://example.org/2024/01/hostile-script-alert-t-script/x.png"' in html
        assert "z" * 10_000_000 in html


def test_wordpress_export_builds_into_valid_feeds(blank_site: Path) -> None:
    import shutil

    import feedparser

    from .conftest import DATA

    shutil.copy(DATA / "wxr" / "small-site.xml", blank_site / "posts" / "export.xml")
    report = build(blank_site)
    assert report.errors == ()
    rss = (blank_site / "feeds" / "rss.xml").read_bytes()
    parsed = feedparser.parse(rss)
    assert parsed.bozo == 0
    titles = [e.title for e in parsed.entries]
    assert "Ceasefire talks resume in Cairo" in titles
    assert "Ünïcödé in Zürich — “quotes” & ampersands" in titles
    # Unpublished kinds never reach a feed; neither do login emails.
    for word in ("DRAFTWORD", "PENDINGWORD", "PRIVATEWORD", "PASSWORDWORD", "PAGEWORD", "REVISIONWORD", "TRASHWORD"):
        assert word.encode() not in rss, word
    assert b"editor@example.org (" not in rss.replace(b"editor@example.org (Editor)", b"")
    # WordPress's GUIDs are kept as ids, so migrated readers see no duplicates.
    assert any(e.id.startswith("https://") and "?p=" in e.id for e in parsed.entries)
    # Shortcode figures survive sanitising.
    assert any("<figcaption>" in e.content[0].value for e in parsed.entries)
    assert (blank_site / "feeds" / "comments.xml").is_file()


def test_hub_is_pinged_with_the_feeds_urls_percent_encoded(blank_site: Path, hub) -> None:
    url = f"http://127.0.0.1:{hub.server_address[1]}/hub"
    write_config(blank_site, extra=f'[feeds]\nhub = "{url}"\n')
    _post(blank_site, "a.txt", '["Война"]')
    report = build(blank_site)
    assert report.warnings == ()
    pinged = {p["hub.url"][0] for p in _Hub.pings}
    assert "https://example.org/feeds/tags/%D0%B2%D0%BE%D0%B9%D0%BD%D0%B0.xml" in pinged
    assert all(url.isascii() for url in pinged)
