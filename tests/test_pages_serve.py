"""The pages through a running ``publisher serve``: every link in every feed,
in a rendered digest (.eml) and on every page resolves (a crawler follows
them all and fails on a 404, a redirect loop or a missing asset); folders
get their index.html, moved posts a 301, the missing a 404 page; pages have
the feeds' conditional GET, gzip and traversal rules; a browser asking for
a feed as HTML gets it as XML, for its stylesheet."""

from __future__ import annotations

import email
import email.policy
import gzip
import re
from pathlib import Path

import pytest

from .conftest import NOW, REPO, SteppedClock, invoke
from .helpers.crawler import Crawler, html_links
from .helpers.web_server import SECRET, SECRET_ENV, Client, WebServer, free_port, make_web_site

pytestmark = pytest.mark.slow  # a real server process

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x1f\x15\xc4\x89" + bytes(25)


def build(site: Path, clock=None) -> None:
    result = invoke("--config", str(site / "publisher.toml"), "build", clock=clock or SteppedClock(NOW))
    assert result.exit_code == 0, result.output + result.stderr


def eml_links(outbox: Path) -> list[str]:
    """The links of the digest sent (its HTML and its text part)."""
    (path,) = sorted((outbox / "new").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html_links(html) + re.findall(r"https?://[^\s<>\]\)]+", text)


def start_paths(site: Path) -> list[str]:
    feeds = [f"/feeds/{p.relative_to(site / 'feeds').as_posix()}" for p in sorted((site / "feeds").rglob("*")) if p.is_file()]
    return ["/", "/sitemap.xml", "/robots.txt", *feeds]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    """The sample site's seed and three posts, served at the test server's address."""
    port = free_port()
    site = make_web_site(tmp_path_factory.mktemp("pages") / "site", port, pages=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(SECRET_ENV, SECRET)
        build(site)
        config = str(site / "publisher.toml")
        for command in (["subscribers", "add", "reader@example.net", "--list", "daily"], ["send", "--list", "daily"]):
            result = invoke("--config", config, *command, clock=SteppedClock(NOW))
            assert result.exit_code == 0, result.output + result.stderr
        build(site, clock=SteppedClock(NOW))  # the issue archive now has the issue sent
    with WebServer(site / "publisher.toml", port) as server:
        yield site, server


def test_every_link_of_the_sample_site_its_feeds_and_its_email_resolves(sample) -> None:
    site, server = sample
    crawler = Crawler(Client(server.port), server.url)
    crawler.visit(start_paths(site))
    links = [crawler.local(link, server.url) for link in eml_links(site / "outbox")]
    assert len([link for link in links if link]) >= 5, "the email links to the site"
    crawler.visit([link for link in links if link], origin="the digest's .eml")
    assert crawler.failures == [], "\n".join(crawler.failures)
    feed_posts = re.findall(r"<link>(http://127\.0\.0\.1:\d+/20\d\d/\d\d/[^<]+/)</link>", (site / "feeds/rss.xml").read_text("utf-8"))
    assert feed_posts and all(crawler.seen[crawler.local(url, server.url)] == 200 for url in feed_posts)
    for path in ("/tags/gaza/", "/authors/editor/", "/2024/01/", "/archives/", "/tags/", "/style.css", "/issues/daily/"):
        assert crawler.seen.get(path) == 200, path


def test_a_generated_site_of_200_posts_with_images_has_no_broken_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    port = free_port()
    site = make_web_site(tmp_path / "site", port, pages=True)
    for n in range(200):
        folder = site / "posts" / f"post-{n:03d}"
        folder.mkdir()
        (folder / "figure.png").write_bytes(PNG + n.to_bytes(2, "big"))
        (folder / "index.md").write_text(
            f"---\ntitle: Generated post {n}\ndate: 2023-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z\n"
            f"tags: [Topic {n % 7}, Series {n % 3}]\nimage: figure.png\n---\n"
            f"Text of post {n}, with [the figure](figure.png).\n\n"
            f"![Figure {n}](figure.png)\n",
            encoding="utf-8",
        )
    build(site)
    with WebServer(site / "publisher.toml", port) as server:
        crawler = Crawler(Client(server.port), server.url)
        crawler.visit(start_paths(site))
    assert crawler.failures == [], "\n".join(crawler.failures)
    images = [path for path, status in crawler.seen.items() if path.endswith("/figure.png") and status == 200]
    assert len(images) == 200
    pages = [path for path in crawler.seen if re.fullmatch(r"/2023/\d\d/generated-post-\d+/", path)]
    assert len(pages) == 200


def test_folders_moved_posts_and_missing_pages(sample) -> None:
    site, server = sample
    client = Client(server.port)
    post = next(p for p in (site / "public" / "2024" / "01").iterdir() if p.is_dir())
    path = f"/2024/01/{post.name}"
    slashless = client.get(path)
    assert slashless.status == 301 and slashless.headers["Location"] == path + "/"
    assert client.get(path + "?a=1").headers["Location"] == path + "/?a=1"
    assert client.get("/style.css/").status == 404 and client.get("/tags").headers["Location"] == "/tags/"
    page = client.get(path + "/")
    assert page.status == 200 and page.body == (post / "index.html").read_bytes()
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "'unsafe-inline'" not in csp
    missing = client.get("/no/such/page/")
    assert missing.status == 404 and b"Nothing here" in missing.body
    assert missing.body == (site / "public" / "404.html").read_bytes()
    (site / "public" / "_redirects").write_text(f"/old-place/ {path}/ 301\n", encoding="utf-8")
    moved = client.get("/old-place/")
    assert moved.status == 301 and moved.headers["Location"] == path + "/"
    assert client.get("/_redirects").status == 404, "the map itself is not served"


def test_pages_have_the_feeds_conditional_get_gzip_and_traversal_rules(sample) -> None:
    site, server = sample
    client = Client(server.port)
    first = client.get("/")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.body == (site / "public" / "index.html").read_bytes()
    assert client.get("/", {"If-None-Match": etag}).status == 304
    assert client.get("/", {"If-Modified-Since": modified}).status == 304
    zipped = client.get("/", {"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.body) == first.body
    head = client.head("/style.css")
    assert head.status == 200 and head.body == b"" and head.headers["Content-Type"] == "text/css; charset=utf-8"
    (site / "secret.txt").write_text("outside", encoding="utf-8")
    for bad in ("/../secret.txt", "/%2e%2e/secret.txt", "/tags/..%2f..%2fsecret.txt", "/.publisher/state.db", "/%00"):
        reply = client.get(bad)
        assert reply.status in (400, 404) and b"outside" not in reply.body, bad


def test_a_browser_gets_a_feed_as_xml_for_its_stylesheet_and_a_reader_as_a_feed(sample) -> None:
    site, server = sample
    client = Client(server.port)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    page = client.get("/feeds/rss.xml", {"Accept": browser})
    assert page.status == 200 and page.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert page.body == (site / "feeds" / "rss.xml").read_bytes()
    assert b'<?xml-stylesheet type="text/xsl" href=' in page.body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Vary"] == "Accept, Accept-Encoding"
    reader = client.get("/feeds/rss.xml", {"Accept": "application/rss+xml, application/xml;q=0.9, */*;q=0.1"})
    assert reader.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert "script-src" not in reader.headers["Content-Security-Policy"]
    assert reader.headers["ETag"] != page.headers["ETag"], "two representations, two tags"
    assert client.get("/feeds/rss.xml", {"Accept": "*/*"}).headers["Content-Type"].startswith("application/rss+xml")
    assert client.get("/feeds/feed.json", {"Accept": browser}).headers["Content-Type"].startswith("application/feed+json")


def test_the_subscribe_form_of_a_static_page_subscribes(sample) -> None:
    site, server = sample
    client = Client(server.port)
    page = client.get("/").text
    assert 'action="/subscribe"' in page and "csrf_token" not in page
    fields = {"email": "static-form@example.net", "list": "daily", "website": ""}
    assert client.post("/subscribe", fields, {"Sec-Fetch-Site": "same-origin"}).status == 200
    assert client.post("/subscribe", fields, {"Origin": server.url.rstrip("/")}).status == 200
    assert client.post("/subscribe", fields, {"Origin": "https://evil.example"}).status == 400
    assert client.post("/subscribe", fields, {"Sec-Fetch-Site": "cross-site"}).status == 400
    assert client.post("/subscribe", fields).status == 400


def test_the_sample_site_of_the_repository_builds_its_pages(tmp_path: Path) -> None:
    site = tmp_path / "sample"
    site.mkdir()
    (site / "publisher.toml").write_bytes((REPO / "publisher.toml").read_bytes())
    (site / "seeds").mkdir()
    for path in (REPO / "seeds").iterdir():
        (site / "seeds" / path.name).write_bytes(path.read_bytes())
    build(site)
    post = site / "public/2014/06/the-us-has-been-speaking-to-hamas-through-back-channels-for-more-than-six-months/index.html"
    html = post.read_text(encoding="utf-8")
    assert "Comments are closed." in html and '<ol>\n<li id="comment-1">' in html


def test_a_unicode_post_is_served_and_its_folder_url_redirected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    port = free_port()
    site = make_web_site(tmp_path / "site", port, pages=True)
    (site / "posts" / "war.txt").write_text("+++\ndate = 2024-05-01T10:00:00Z\n+++\nВойна и мир\n\nТекст.\n", encoding="utf-8")
    build(site)
    encoded = "/2024/05/%D0%B2%D0%BE%D0%B9%D0%BD%D0%B0-%D0%B8-%D0%BC%D0%B8%D1%80"
    with WebServer(site / "publisher.toml", port) as server:
        client = Client(server.port)
        page = client.get(encoded + "/")
        assert page.status == 200 and "<h1>Война и мир</h1>" in page.text
        moved = client.get(encoded)
        assert moved.status == 301 and moved.headers["Location"] == encoded + "/"
