"""``web.FeedFiles``, the layer that answers for the feeds folder ahead of
Flask, as a WSGI application: what it remembers of a file between requests
must never outlive the file (a rebuild renaming new bytes over it, a
symlink re-pointed, a file removed)."""

from __future__ import annotations

import gzip
import http.client
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from waitress import create_server
from werkzeug.test import Client

from publisher.app.web import RSS_TYPE, FeedFiles

from .conftest import build

OUTSIDE = b"<secret>outside the feeds folder</secret>\n"


def fallback(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("X-Fallback", "yes")])
    return [b"passed on\n"]


def replace(path: Path, data: bytes) -> None:
    """As the writer does: a temporary file renamed over the old one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    feeds = tmp_path / "feeds"
    (feeds / "tags").mkdir(parents=True)
    (feeds / "rss.xml").write_bytes(b"<rss>first</rss>\n" * 40)
    (feeds / "tags" / "a.xml").write_bytes(b"<rss>tag a</rss>\n")
    (tmp_path / "outside.xml").write_bytes(OUTSIDE)
    return feeds


@pytest.fixture
def client(folder: Path) -> Client:
    return Client(FeedFiles(fallback, folder, "feeds/"))


def test_a_file_replaced_by_a_rebuild_is_served_new(client: Client, folder: Path) -> None:
    first = client.get("/feeds/rss.xml")
    assert first.status_code == 200 and first.data == (folder / "rss.xml").read_bytes()
    assert first.headers["Content-Type"] == RSS_TYPE
    old_tag = first.headers["ETag"]
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": old_tag}).status_code == 304

    replace(folder / "rss.xml", b"<rss>second</rss>\n" * 40)  # the same size
    second = client.get("/feeds/rss.xml", headers={"If-None-Match": old_tag})
    assert second.status_code == 200
    assert second.data == b"<rss>second</rss>\n" * 40
    assert second.headers["ETag"] != old_tag
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": second.headers["ETag"]}).status_code == 304
    zipped = client.get("/rss.xml", headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(zipped.data) == second.data


def test_a_symlink_repointed_out_of_the_folder_is_refused(client: Client, folder: Path, tmp_path: Path) -> None:
    link = folder / "tags" / "b.xml"
    link.symlink_to("a.xml")
    assert client.get("/feeds/tags/b.xml").data == b"<rss>tag a</rss>\n"
    link.unlink()
    link.symlink_to(tmp_path / "outside.xml")
    refused = client.get("/feeds/tags/b.xml")
    assert refused.status_code == 404 and refused.headers["X-Fallback"] == "yes"
    assert OUTSIDE not in refused.data


def test_a_removed_file_is_passed_on(client: Client, folder: Path) -> None:
    assert client.get("/feeds/tags/a.xml").status_code == 200
    (folder / "tags" / "a.xml").unlink()
    assert client.get("/feeds/tags/a.xml").headers["X-Fallback"] == "yes"
    (folder / "tags" / "a.xml").write_bytes(b"<rss>back</rss>\n")
    assert client.get("/feeds/tags/a.xml").data == b"<rss>back</rss>\n"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/feeds/rss.xml"),
        ("DELETE", "/rss.xml"),
        ("GET", "/feeds/publisher.toml"),
        ("GET", "/feeds/.rss.xml.tmp"),
        ("GET", "/feeds/"),
        ("GET", "/feeds/tags%2fa.xml"),
        ("GET", "/feeds/tags/..%2f..%2foutside.xml"),
    ],
)
def test_anything_else_is_passed_on(client: Client, method: str, path: str) -> None:
    reply = client.open(path, method=method)
    assert reply.headers.get("X-Fallback") == "yes", (method, path, reply.status)


def test_head_and_dates(client: Client, folder: Path) -> None:
    full = client.get("/feeds/rss.xml")
    head = client.head("/feeds/rss.xml")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(full.data))
    zipped = client.head("/feeds/rss.xml", headers={"Accept-Encoding": "gzip"})
    assert int(zipped.headers["Content-Length"]) == len(gzip.compress(full.data, mtime=0))
    modified = full.headers["Last-Modified"]
    assert client.get("/feeds/rss.xml", headers={"If-Modified-Since": modified}).status_code == 304
    rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT"  # long before the file
    assert client.get("/feeds/rss.xml", headers={"If-Modified-Since": rfc850}).status_code == 200
    assert client.get("/feeds/rss.xml", headers={"If-Modified-Since": "not a date"}).status_code == 200
    weak = "W/" + full.headers["ETag"]
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": weak}).status_code == 304


@pytest.mark.slow
def test_a_tag_feed_in_another_script_is_served_at_its_self_link(blank_site: Path) -> None:
    """The file is named in Unicode; its link is percent-encoded; a real
    WSGI server decodes the request path back to the file's name."""
    for day, tag in ((1, "Война"), (2, "Мир")):
        (blank_site / "posts" / f"{day}.txt").write_text(
            f'+++\ndate = 2024-01-0{day}T10:00:00Z\ntags = ["{tag}"]\n+++\nPost {day}\n\nx\n', encoding="utf-8"
        )
    build(blank_site)
    feeds = blank_site / "feeds"
    server = create_server(FeedFiles(fallback, feeds, "feeds/"), host="127.0.0.1", port=0, ident="")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for tag in ("Война", "Мир"):
            path = feeds / "tags" / f"{tag.lower()}.atom.xml"
            (link,) = [l.href for l in feedparser.parse(path.read_bytes()).feed.links if l.rel == "self"]
            target = urlsplit(link).path
            assert target.isascii() and "%D0" in target
            connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
            try:
                connection.request("GET", target)
                reply = connection.getresponse()
                data = reply.read()
            finally:
                connection.close()
            assert reply.status == 200, target
            assert data == path.read_bytes()
            assert feedparser.parse(data).feed.title == f"Test Site: {tag}"
    finally:
        server.close()
        thread.join(timeout=10)
