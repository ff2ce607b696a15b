"""``publisher serve`` over real HTTP: a server process on 127.0.0.1, plain http.client requests.

One server (and one site) serves the module; every test that subscribes
comes from its own client address (X-Forwarded-For, which 127.0.0.1, a
trusted proxy by default, may set) and uses its own email addresses, so the
rate limits of one test never touch another.
"""

from __future__ import annotations

import gzip
import ipaddress
import itertools
import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber, remove_subscriber, set_subscriber_status
from publisher.state.store import StateStore
from publisher.mail.tokens import sign_token
from publisher.app.web import (
    ATOM_TYPE,
    JSON_FEED_TYPE,
    RSS_TYPE,
    XSLT_TYPE,
    client_ip,
    feed_content_type,
    resolve_feed_file,
)

from .helpers.web_server import (
    SECRET,
    SECRET_ENV,
    Client,
    WebServer,
    confirm_link,
    confirmations_to,
    free_port,
    make_web_site,
    outbox_messages,
)
from .helpers.waiting import wait_for

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
PER_ADDRESS = 2
PER_IP = 4
OUTSIDE = "TOPSECRET-outside-the-feeds-folder"


class Web:
    def __init__(self, site: Path, server: WebServer):
        self.site = site
        self.server = server
        self.config = load_config(site / "publisher.toml")
        self.feeds = self.config.feeds.out
        self.outbox = self.config.mail.outbox
        self.db = self.config.state.path
        self._ips = itertools.count(1)

    def client(self) -> Client:
        """A client from an address of its own (a fresh per-IP allowance)."""
        n = next(self._ips)
        return Client(self.server.port, forwarded_for=f"198.51.100.{n}")

    def add(self, email: str, lists=("daily",), status: str = "active") -> None:
        store = StateStore.open(self.db)
        try:
            add_subscriber(store.subscribers, email, "", list(lists), source="test", now=NOW, status=status)
        finally:
            store.close()

    def status(self, email: str) -> tuple[str | None, dict[str, str]]:
        """The address's status and its subscriptions, read straight from the SQLite file."""
        db = sqlite3.connect(self.db)
        try:
            row = db.execute("SELECT id, status FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                return None, {}
            lists = dict(db.execute("SELECT list, status FROM subscriptions WHERE subscriber_id = ?", (row[0],)))
            return row[1], lists
        finally:
            db.close()

    def token(self, email: str, list_name: str = "daily", purpose: str = "unsubscribe", secret: str = SECRET) -> str:
        return sign_token(secret.encode(), email, list_name, purpose=purpose)

    def confirm_path(self, address: str, lists=("daily",)) -> str:
        """Ask for ``address`` through the form; the path of the link its confirmation email carries."""
        client = self.client()
        assert subscribe(client, client.csrf(), address, lists=lists).status == 200
        (message,) = wait_for(lambda: confirmations_to(self.outbox, address), what=f"the confirmation to {address}")
        return "/" + confirm_link(message)[len(self.server.url) :]

    def sentinel(self, client: Client, csrf: str) -> None:
        """Subscribe a fresh address and wait for its confirmation: the mailer
        sends in order, so everything queued before it has been sent."""
        address = f"sentinel-{next(self._ips)}@example.net"
        assert subscribe(client, csrf, address).status == 200
        wait_for(lambda: confirmations_to(self.outbox, address), what=f"the confirmation to {address}")


def subscribe(client: Client, csrf: str, email: str, lists=("daily",), **extra: str):
    fields = {"csrf_token": csrf, "email": email, "name": "A Reader", "list": list(lists), "website": ""}
    fields.update(extra)
    return client.post("/subscribe", fields)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    site = make_web_site(
        tmp_path_factory.mktemp("web") / "site",
        port,
        extra=f"\n[serve]\nsubscribe_per_address = {PER_ADDRESS}\nsubscribe_per_ip = {PER_IP}\n",
    )
    config_path = str(site / "publisher.toml")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(SECRET_ENV, SECRET)
        runner = CliRunner()
        result = runner.invoke(main, ["--config", config_path, "build"])
        assert result.exit_code == 0, result.output
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path)
        add_subscriber(store.subscribers, "digest-reader@example.net", "Dee", ["daily"], source="test", now=NOW)
        store.close()
        result = runner.invoke(main, ["--config", config_path, "send", "--list", "daily"])
        assert result.exit_code == 0, result.output
    # Things outside the feeds folder that a traversal would like to reach.
    (site / "outside.xml").write_text(f"<secret>{OUTSIDE}</secret>\n", encoding="utf-8")
    (config.feeds.out / "leak.xml").symlink_to(site / "outside.xml")
    (config.feeds.out / "tags" / "leak.atom.xml").symlink_to("../../outside.xml")
    (config.feeds.out / "escape").symlink_to(site, target_is_directory=True)
    (config.feeds.out / ".rss.xml.abc.tmp").write_text(OUTSIDE, encoding="utf-8")
    with WebServer(site / "publisher.toml", port) as server:
        yield Web(site, server)
        code = server.stop()
    assert code == 0, server.output()
    assert "Stopped" in server.output()
    assert "Traceback" not in server.output(), server.output()


# -- the feeds folder ------------------------------------------------------------------


FEEDS = [
    ("rss.xml", RSS_TYPE),
    ("atom.xml", ATOM_TYPE),
    ("feed.json", JSON_FEED_TYPE),
    ("tags/diplomacy.xml", RSS_TYPE),
    ("tags/diplomacy.atom.xml", ATOM_TYPE),
    ("tags/diplomacy.json", JSON_FEED_TYPE),
    ("authors/editor.xml", RSS_TYPE),
    ("authors/editor.atom.xml", ATOM_TYPE),
    ("authors/editor.json", JSON_FEED_TYPE),
    ("comments.xml", RSS_TYPE),
    ("archive/rss-1.xml", RSS_TYPE),
    ("archive/atom-1.xml", ATOM_TYPE),
    ("feed.xsl", XSLT_TYPE),
]


@pytest.mark.parametrize("prefix", ["/feeds/", "/"])
@pytest.mark.parametrize(("name", "content_type"), FEEDS)
def test_each_kind_of_feed_has_its_content_type(web: Web, prefix: str, name: str, content_type: str) -> None:
    reply = Client(web.server.port).get(prefix + name)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    assert reply.body == (web.feeds / name).read_bytes()
    assert reply.headers["Cache-Control"] == "public, max-age=300"
    # With feed.xsl, a browser asking for HTML gets an XML feed as a page.
    assert reply.headers["Vary"] == ("Accept, Accept-Encoding" if name.endswith(".xml") else "Accept-Encoding")


def test_the_autodiscovered_feed_urls_are_served(web: Web) -> None:
    client = Client(web.server.port)
    page = client.get("/").text
    hrefs = re.findall(r'<link rel="alternate" type="([^"]+)" title="[^"]*" href="([^"]+)">', page)
    assert [kind for kind, _ in hrefs] == ["application/rss+xml", "application/atom+xml", "application/feed+json"]
    for kind, href in hrefs:
        assert href.startswith(web.server.url)
        reply = client.get("/" + href[len(web.server.url) :])
        assert reply.status == 200 and reply.headers["Content-Type"].startswith(kind)


def test_etag_and_last_modified_give_304(web: Web) -> None:
    client = Client(web.server.port)
    # Written two days ago, so that a later date can be in the past.
    two_days_ago = datetime.now(timezone.utc).timestamp() - 2 * 86400
    os.utime(web.feeds / "rss.xml", (two_days_ago, two_days_ago))
    first = client.get("/feeds/rss.xml")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f-]+"', etag), "a strong ETag"
    mtime = (web.feeds / "rss.xml").stat().st_mtime
    assert parsedate_to_datetime(modified) == datetime.fromtimestamp(int(mtime), timezone.utc)

    by_tag = client.get("/feeds/rss.xml", {"If-None-Match": etag})
    assert by_tag.status == 304 and by_tag.body == b""
    assert by_tag.headers["ETag"] == etag
    assert client.get("/feeds/rss.xml", {"If-None-Match": f'"other", {etag}'}).status == 304
    assert client.get("/feeds/rss.xml", {"If-None-Match": "*"}).status == 304
    assert client.get("/feeds/rss.xml", {"If-None-Match": '"other"'}).status == 200

    by_date = client.get("/feeds/rss.xml", {"If-Modified-Since": modified})
    assert by_date.status == 304 and by_date.body == b""
    later = format_datetime(datetime.fromtimestamp(int(mtime) + 3600, timezone.utc), usegmt=True)
    assert client.get("/feeds/rss.xml", {"If-Modified-Since": later}).status == 304
    earlier = format_datetime(datetime.fromtimestamp(int(mtime) - 3600, timezone.utc), usegmt=True)
    changed = client.get("/feeds/rss.xml", {"If-Modified-Since": earlier})
    assert changed.status == 200 and changed.body == (web.feeds / "rss.xml").read_bytes()
    # A date in the future is not a valid date (RFC 9110 13.1.3): ignored.
    future = format_datetime(datetime.fromtimestamp(int(mtime) + 3 * 86400, timezone.utc), usegmt=True)
    assert client.get("/feeds/rss.xml", {"If-Modified-Since": future}).status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    assert client.get("/feeds/rss.xml", {"If-None-Match": '"other"', "If-Modified-Since": later}).status == 200


def test_gzip_when_accepted(web: Web) -> None:
    client = Client(web.server.port)
    plain = client.get("/feeds/atom.xml")
    zipped = client.get("/feeds/atom.xml", {"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept, Accept-Encoding"  # with feed.xsl: a browser gets a page
    assert zipped.headers["Content-Type"] == ATOM_TYPE
    assert gzip.decompress(zipped.body) == plain.body == (web.feeds / "atom.xml").read_bytes()
    assert len(zipped.body) < len(plain.body)
    assert int(zipped.headers["Content-Length"]) == len(zipped.body)
    # Another representation, another strong tag; each revalidates.
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    again = client.get("/feeds/atom.xml", {"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status == 304
    refused = client.get("/feeds/atom.xml", {"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.body == plain.body


def test_head_has_the_headers_and_no_body(web: Web) -> None:
    client = Client(web.server.port)
    full = client.get("/feeds/feed.json")
    head = client.head("/feeds/feed.json")
    assert head.status == 200 and head.body == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control"):
        assert head.headers[name] == full.headers[name], name
    assert int(head.headers["Content-Length"]) == len(full.body)
    zipped = client.head("/feeds/feed.json", {"Accept-Encoding": "gzip"})
    assert zipped.body == b"" and zipped.headers["Content-Encoding"] == "gzip"
    assert client.head("/feeds/feed.json", {"If-None-Match": full.headers["ETag"]}).status == 304


TRAVERSALS = [
    "/../publisher.toml",
    "/%2e%2e/publisher.toml",
    "/feeds/../publisher.toml",
    "/feeds/%2e%2e/publisher.toml",
    "/tags/../../publisher.toml",
    "/tags/..%2f..%2fpublisher.toml",
    "/feeds/tags/..%2f..%2f..%2fpublisher.toml",
    "/tags/..%2F..%2Foutside.xml",
    "/tags%5c..%5cpublisher.toml",
    "/feeds/tags%5C..%5C..%5Coutside.xml",
    "/tags\\..\\..\\outside.xml",
    "/leak.xml",  # a symlink out of the folder
    "/feeds/leak.xml",
    "/feeds/tags/leak.atom.xml",
    "/feeds/escape/outside.xml",  # a symlinked folder leading out
    "/escape/publisher.toml",
    "/rss.xml%00",
    "/rss.xml%00.json",
    "/feeds/%00/../publisher.toml",
    "//etc/passwd",
    "/%2fetc/passwd",
    "/feeds//etc/passwd",
    "/feeds/.rss.xml.abc.tmp",  # the writer's temporary files
    "/publisher.toml",
    "/outside.xml",
    "/feeds/",
    "/tags/",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_the_feeds_folder_is_served(web: Web, path: str) -> None:
    client = Client(web.server.port)
    for method in ("GET", "HEAD"):
        reply = client.request(method, path)
        assert reply.status == 404, (method, path, reply.status)
        assert OUTSIDE.encode() not in reply.body
        assert b"subscribe_per_ip" not in reply.body and b"[site]" not in reply.body


def test_the_path_checks_alone() -> None:
    folder = Path(__file__).resolve().parent / "data"
    for name in ("../conftest.py", "/etc/passwd", "a\\b.xml", "a\x00.xml", "x/./y.xml", "", ".hidden.xml"):
        assert resolve_feed_file(folder, name) is None, name
    assert feed_content_type("tags/atom-1.xml") == RSS_TYPE  # a tag named "atom-1", not an archive
    assert feed_content_type("archive/atom-12.xml") == ATOM_TYPE
    assert feed_content_type("publisher.toml") is None


# -- pages and headers ---------------------------------------------------------------


def test_security_headers_on_every_kind_of_response(web: Web) -> None:
    client = Client(web.server.port)
    replies = {
        "index": client.get("/"),
        "feed": client.get("/feeds/rss.xml"),
        "not modified": client.get("/feeds/rss.xml", {"If-None-Match": "*"}),
        "missing": client.get("/no-such-page"),
        "bad token": client.get("/unsubscribe/nonsense"),
        "archive": client.get("/issues/"),
        "issue": client.get("/issues/daily/1/"),
        "css": client.get("/site.css"),
        "wrong method": client.request("DELETE", "/"),
    }
    for what, reply in replies.items():
        csp = reply.headers["Content-Security-Policy"]
        for directive in (
            "default-src 'none'",
            "img-src 'self' https:",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ):
            assert directive in csp, (what, directive)
        assert "script-src" not in csp
        assert reply.headers["X-Content-Type-Options"] == "nosniff", what
        assert reply.headers["Referrer-Policy"] == "no-referrer", what
        assert reply.headers["X-Frame-Options"] == "DENY", what
        assert reply.headers["Server"] is None, what
        assert "waitress" not in str(reply.headers).lower() and "werkzeug" not in str(reply.headers).lower()
    assert replies["wrong method"].status == 405
    # Only the email's HTML needs inline styles.
    assert "'unsafe-inline'" not in replies["index"].headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in replies["issue"].headers["Content-Security-Policy"]


def test_the_index_page(web: Web) -> None:
    client = Client(web.server.port)
    reply = client.get("/")
    assert reply.status == 200 and reply.headers["Content-Type"] == "text/html; charset=utf-8"
    page = reply.text
    assert "<title>Web Test Site</title>" in page
    # The newest posts, from feed.json (which holds [feeds] items = 2 of them).
    for title in ("Aid arrives", "A ceasefire holds"):
        assert title in page
    assert "Talks resume" not in page
    assert page.index("Aid arrives") < page.index("A ceasefire holds"), "newest first"
    assert 'name="email"' in page and 'name="name"' in page
    assert 'name="list" value="daily"' in page and 'name="list" value="weekly"' in page
    assert 'name="website"' in page and 'tabindex="-1"' in page
    assert 'name="csrf_token"' in page
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # the site is http://
    assert reply.headers["Cache-Control"] == "no-store"


def test_user_text_is_escaped(web: Web) -> None:
    client = web.client()
    csrf = client.csrf()
    reply = subscribe(client, csrf, '<script>alert(1)</script>"@x', lists=())
    assert reply.status == 400
    assert "<script>alert(1)</script>" not in reply.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reply.text


def test_the_issue_archive(web: Web) -> None:
    client = Client(web.server.port)
    archive = client.get("/issues/")
    assert archive.status == 200
    assert 'href="/issues/daily/1/"' in archive.text and "Daily digest" in archive.text
    issue = client.get("/issues/daily/1/")
    assert issue.status == 200 and issue.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "%%PUB" not in issue.text
    assert "Hello <span class=\"recipient-name\">there</span>" in issue.text
    assert "digest-reader@example.net" not in issue.text and "Dee" not in issue.text
    assert "/unsubscribe/" not in issue.text and "/preferences/" not in issue.text
    assert "Aid arrives" in issue.text
    # The digest's own "view in browser" link leads here.
    (digest,) = [m for m in outbox_messages(web.outbox) if m["To"].addresses[0].addr_spec == "digest-reader@example.net"]
    html = digest.get_body(("html",)).get_content()
    assert f'href="{web.server.url}issues/daily/1/"' in html
    for missing in ("/issues/daily/2/", "/issues/weekly/1/", "/issues/nope/1/", "/issues/daily/0/",
                    "/issues/daily/99999999999999999999999/", "/issues/daily/x/"):
        assert client.get(missing).status == 404, missing
    assert client.get("/issues/daily/1").status in (301, 308)  # to the canonical URL


# -- one-click unsubscribe --------------------------------------------------------------


ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_one_click_unsubscribe_is_idempotent(web: Web) -> None:
    web.add("leaver@example.net", ["daily", "weekly"])
    client = Client(web.server.port)  # a mail client: no cookie, no CSRF token
    path = "/unsubscribe/" + web.token("leaver@example.net", "daily")
    first = client.post(path, ONE_CLICK)
    assert first.status == 200
    assert web.status("leaver@example.net") == ("active", {"daily": "unsubscribed", "weekly": "active"})
    second = client.post(path, ONE_CLICK)
    assert second.status == 200
    assert web.status("leaver@example.net") == ("active", {"daily": "unsubscribed", "weekly": "active"})
    # Leaving the last list unsubscribes the address.
    assert client.post("/unsubscribe/" + web.token("leaver@example.net", "weekly"), ONE_CLICK).status == 200
    assert web.status("leaver@example.net") == ("unsubscribed", {"daily": "unsubscribed", "weekly": "unsubscribed"})


def test_one_click_as_multipart_form_data(web: Web) -> None:
    web.add("multipart@example.net")
    boundary = "xyzzy"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    ).encode()
    reply = Client(web.server.port).request(
        "POST",
        "/unsubscribe/" + web.token("multipart@example.net"),
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert reply.status == 200
    assert web.status("multipart@example.net") == ("unsubscribed", {"daily": "unsubscribed"})


def test_a_get_never_unsubscribes(web: Web) -> None:
    web.add("scanned@example.net")
    client = Client(web.server.port)
    path = "/unsubscribe/" + web.token("scanned@example.net")
    for _ in range(3):
        page = client.get(path)
        assert page.status == 200
        assert client.head(path).status == 200
    assert web.status("scanned@example.net") == ("active", {"daily": "active"})
    # The page's button posts the one-click body to the same URL.
    assert re.search(r'<form method="post" action="">\s*<input type="hidden" name="List-Unsubscribe" value="One-Click">', page.text)
    assert "scanned@example.net" in page.text and "Daily digest" in page.text
    assert page.headers["X-Robots-Tag"] == "noindex"


def test_the_digest_unsubscribe_header_works(web: Web) -> None:
    """What a mail client does with a real digest's headers (RFC 8058)."""
    (digest,) = [m for m in outbox_messages(web.outbox) if m["To"].addresses[0].addr_spec == "digest-reader@example.net"]
    url = digest["List-Unsubscribe"].strip("<>")
    assert url.startswith(web.server.url + "unsubscribe/")
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = "/" + url[len(web.server.url) :]
    client = Client(web.server.port)
    assert client.get(path).status == 200
    assert web.status("digest-reader@example.net") == ("active", {"daily": "active"})
    assert client.post(path, {"List-Unsubscribe": "One-Click"}).status == 200
    assert web.status("digest-reader@example.net") == ("unsubscribed", {"daily": "unsubscribed"})
    # The same recipient's preferences link (in the footer) still opens.
    html = digest.get_body(("html",)).get_content()
    preferences = re.search(r'href="(http://[^"]+/preferences/[^"]+)"', html).group(1)
    page = client.get("/" + preferences[len(web.server.url) :])
    assert page.status == 200 and "unsubscribed" in page.text


def forged_tokens(web: Web) -> list[str]:
    good = web.token("victim@example.net")
    version, subscriber, list_name, signature = good.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other_address = web.token("victim@example.net").replace(subscriber, web.token("other@example.net").split(".")[1])
    return [
        web.token("victim@example.net", secret="another-secret-that-is-long-enough"),  # forged
        ".".join((version, subscriber, list_name, flipped)),  # signature altered
        other_address,  # subscriber altered
        ".".join((version, subscriber, web.token("v", "weekly").split(".")[2], signature)),  # list altered
        web.token("victim@example.net", purpose="preferences"),  # another purpose
        web.token("victim@example.net", purpose="confirm"),
        web.token("nobody-at-all@example.net"),  # validly signed, unknown address
        good[:-3],  # truncated
        "v2" + good[2:],
        "nonsense",
        "%00",
        "a" * 3000,
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_tokens_get_one_generic_400(web: Web, method: str) -> None:
    web.add("victim@example.net")
    client = Client(web.server.port)
    bodies = set()
    for endpoint in ("unsubscribe", "preferences", "confirm"):
        for token in forged_tokens(web):
            if endpoint == "preferences" and token == web.token("victim@example.net", purpose="preferences"):
                continue  # that one is valid there
            if endpoint == "confirm" and token == web.token("victim@example.net", purpose="confirm"):
                continue
            path = f"/{endpoint}/{token}"
            reply = client.post(path, ONE_CLICK) if method == "POST" else client.get(path)
            assert reply.status == 400, (endpoint, token[:40], reply.status)
            assert b"victim" not in reply.body
            bodies.add(reply.body)
    assert len(bodies) == 1, "every bad token gets the very same page"
    assert web.status("victim@example.net") == ("active", {"daily": "active"})


def test_a_post_without_the_one_click_body_changes_nothing(web: Web) -> None:
    web.add("careful@example.net")
    client = Client(web.server.port)
    path = "/unsubscribe/" + web.token("careful@example.net")
    assert client.post(path, {"List-Unsubscribe": "something else"}).status == 400
    assert client.request("POST", path).status == 400
    assert web.status("careful@example.net") == ("active", {"daily": "active"})


# -- preferences --------------------------------------------------------------------------


def test_preferences_show_the_lists_and_leave_one(web: Web) -> None:
    web.add("chooser@example.net", ["daily", "weekly"])
    client = Client(web.server.port)
    path = "/preferences/" + web.token("chooser@example.net", purpose="preferences")
    page = client.get(path)
    assert page.status == 200
    assert page.text.count("<td>subscribed</td>") == 2
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post(path, {"leave": "weekly"}).status == 400, "no CSRF token"
    assert web.status("chooser@example.net") == ("active", {"daily": "active", "weekly": "active"})
    left = client.post(path, {"leave": "weekly", "csrf_token": csrf})
    assert left.status == 200 and "You left Weekly roundup" in left.text
    assert web.status("chooser@example.net") == ("active", {"daily": "active", "weekly": "unsubscribed"})
    everything = client.post(path, {"leave": "*", "csrf_token": csrf})
    assert everything.status == 200
    assert web.status("chooser@example.net") == ("unsubscribed", {"daily": "unsubscribed", "weekly": "unsubscribed"})


# -- subscribing ----------------------------------------------------------------------------


def test_the_answer_is_the_same_for_known_and_unknown_addresses(web: Web) -> None:
    web.add("known-active@example.net", ["daily"])
    web.add("known-bounced@example.net", ["daily"], status="bounced")
    client = web.client()
    csrf = client.csrf()
    replies = [subscribe(client, csrf, address) for address in (
        "brand-new@example.net", "known-active@example.net", "known-bounced@example.net", "brand-new@example.net",
    )]
    assert {r.status for r in replies} == {200}
    assert len({r.body for r in replies}) == 1
    assert all(r.headers["Set-Cookie"] is None for r in replies)
    assert all(len(r.headers.get_all("Content-Length")) == 1 for r in replies)
    # Only the new address is mailed: the active one is on the list already,
    # the bounced one is never mailed.
    wait_for(lambda: confirmations_to(web.outbox, "brand-new@example.net"), what="the confirmation")
    sentinel_client = web.client()
    web.sentinel(sentinel_client, sentinel_client.csrf())
    assert len(confirmations_to(web.outbox, "brand-new@example.net")) == 2
    assert confirmations_to(web.outbox, "known-active@example.net") == []
    assert confirmations_to(web.outbox, "known-bounced@example.net") == []
    assert web.status("brand-new@example.net") == ("pending", {})
    assert web.status("known-active@example.net") == ("active", {"daily": "active"})
    assert web.status("known-bounced@example.net") == ("bounced", {"daily": "active"})


def test_an_active_subscriber_asking_for_another_list_confirms_it(web: Web) -> None:
    web.add("growing@example.net", ["daily"])
    client = web.client()
    assert subscribe(client, client.csrf(), "growing@example.net", lists=("daily", "weekly")).status == 200
    (message,) = wait_for(lambda: confirmations_to(web.outbox, "growing@example.net"), what="the confirmation")
    text = message.get_body(("plain",)).get_content()
    assert "Weekly roundup" in text and "Daily digest" not in text
    assert web.status("growing@example.net") == ("active", {"daily": "active"}), "nothing changes before confirming"


def test_the_honeypot_drops_bots_silently(web: Web) -> None:
    client = web.client()
    csrf = client.csrf()
    human = subscribe(client, csrf, "human@example.net")
    bot = subscribe(client, csrf, "bot-target@example.net", website="http://spam.example/")
    assert bot.status == human.status == 200
    assert bot.body == human.body
    web.sentinel(client, csrf)
    assert confirmations_to(web.outbox, "bot-target@example.net") == []
    assert confirmations_to(web.outbox, "human@example.net")
    assert web.status("bot-target@example.net") == (None, {})


def test_confirmation_emails_per_address_are_limited(web: Web) -> None:
    for _ in range(PER_ADDRESS + 3):
        client = web.client()  # a new IP each time: only the per-address limit applies
        assert subscribe(client, client.csrf(), "popular@example.net").status == 200
    sentinel = web.client()
    web.sentinel(sentinel, sentinel.csrf())
    assert len(confirmations_to(web.outbox, "popular@example.net")) == PER_ADDRESS


def test_attempts_per_ip_are_limited(web: Web) -> None:
    client = web.client()
    csrf = client.csrf()
    for n in range(PER_IP):
        assert subscribe(client, csrf, f"from-one-ip-{n}@example.net").status == 200
    over = subscribe(client, csrf, "one-too-many@example.net")
    assert over.status == 429
    assert over.headers["Retry-After"] == "3600"
    # A bot's attempts count too (honeypot or not), and are refused as well.
    assert subscribe(client, csrf, "bot@example.net", website="x").status == 429
    other = web.client()
    assert subscribe(other, other.csrf(), "another-ip@example.net").status == 200
    web.sentinel(other, other.csrf())
    assert confirmations_to(web.outbox, "one-too-many@example.net") == []
    assert web.status("one-too-many@example.net") == (None, {})


def test_forms_need_the_csrf_token(web: Web) -> None:
    client = web.client()
    csrf = client.csrf()
    fields = {"email": "csrf@example.net", "list": "daily"}
    assert client.post("/subscribe", fields).status == 400
    assert client.post("/subscribe", {**fields, "csrf_token": csrf[:-2] + "xx"}).status == 400
    cookieless = Client(web.server.port, forwarded_for=client.forwarded_for)
    assert cookieless.post("/subscribe", {**fields, "csrf_token": csrf}).status == 400
    # Another visitor's cookie with this visitor's token: no.
    stranger = web.client()
    stranger.csrf()
    assert stranger.post("/subscribe", {**fields, "csrf_token": csrf}).status == 400
    assert client.post("/subscribe", {**fields, "csrf_token": csrf}).status == 200
    confirm_path = web.confirm_path("csrf-confirm@example.net")
    assert client.post(confirm_path, {}).status == 400
    assert "expired" in client.post(confirm_path, {"csrf_token": "x" * 43}).text
    assert web.status("csrf-confirm@example.net") == ("pending", {})


def test_bad_input_is_an_error_on_the_form(web: Web) -> None:
    client = web.client()
    csrf = client.csrf()
    bad = subscribe(client, csrf, "not an address")
    assert bad.status == 400 and "does not look like an email address" in bad.text
    assert 'value="not an address"' in bad.text
    none = subscribe(client, csrf, "no-list@example.net", lists=())
    assert none.status == 400 and "Choose at least one list" in none.text
    unknown = subscribe(client, csrf, "no-list@example.net", lists=("nope",))
    assert unknown.status == 400


def test_requests_over_64_kb_are_refused(web: Web) -> None:
    client = web.client()
    csrf = client.csrf()
    reply = subscribe(client, csrf, "big@example.net", name="x" * 100_000)
    assert reply.status == 413
    assert web.status("big@example.net") == (None, {})


def test_confirming_activates_the_subscription(web: Web) -> None:
    web.add("came-back@example.net", ["daily"])
    store = StateStore.open(web.db)
    remove_subscriber(store.subscribers, "came-back@example.net", None, now=NOW)
    store.close()
    for address in ("confirmer@example.net", "came-back@example.net"):
        client = web.client()
        assert subscribe(client, client.csrf(), address, lists=("daily", "weekly")).status == 200
        (message,) = wait_for(lambda: confirmations_to(web.outbox, address), what="the confirmation")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["To"].addresses[0].display_name == "", "the typed name is not mailed to strangers"
        link = confirm_link(message)
        assert link.startswith(web.server.url + "confirm/")
        assert link in message.get_body(("plain",)).get_content()
        path = "/" + link[len(web.server.url) :]
        browser = Client(web.server.port)
        page = browser.get(path)
        assert page.status == 200 and "Daily digest" in page.text and "Weekly roundup" in page.text
        assert web.status(address)[0] in ("pending", "unsubscribed"), "a GET confirms nothing"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        done = browser.post(path, {"csrf_token": csrf})
        assert done.status == 200 and "You are subscribed" in done.text
        assert web.status(address) == ("active", {"daily": "active", "weekly": "active"})
        assert browser.post(path, {"csrf_token": csrf}).status == 200, "confirming twice is harmless"
    # An address that bounced after asking: its link confirms nothing.
    bounced = "confirm-bounced@example.net"
    path = web.confirm_path(bounced)
    browser = Client(web.server.port)
    csrf = browser.csrf(path)
    store = StateStore.open(web.db)
    set_subscriber_status(store.subscribers, bounced, "bounced", now=datetime.now(timezone.utc) + timedelta(minutes=1))
    store.close()
    assert browser.post(path, {"csrf_token": csrf}).status == 400
    assert web.status(bounced)[0] == "bounced"


# -- the client's address --------------------------------------------------------------------


def test_client_ip_believes_only_trusted_proxies() -> None:
    trusted = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8"))
    assert client_ip("203.0.113.9", ["198.51.100.1"], trusted) == "203.0.113.9", "an untrusted peer"
    assert client_ip("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_ip("127.0.0.1", ["198.51.100.1"], trusted) == "198.51.100.1"
    # The client wrote the leftmost hop; our proxies appended the rest.
    assert client_ip("127.0.0.1", ["1.2.3.4, 198.51.100.1, 10.0.0.2"], trusted) == "198.51.100.1"
    assert client_ip("127.0.0.1", ["1.2.3.4", "198.51.100.1"], trusted) == "198.51.100.1"
    assert client_ip("127.0.0.1", ["10.0.0.3, 10.0.0.2"], trusted) == "10.0.0.3"
    assert client_ip("127.0.0.1", ["198.51.100.1:5000"], trusted) == "198.51.100.1"
    assert client_ip("127.0.0.1", ["[2001:db8::1]:443"], trusted) == "2001:db8::1"
    assert client_ip("127.0.0.1", ["garbage"], trusted) == "garbage"


# -- running ------------------------------------------------------------------------------


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    site = make_web_site(tmp_path / "site", port, extra="\n[serve]\nhost = \"127.0.0.1\"\nport = 1\n")
    with WebServer(site / "publisher.toml", port) as server:
        assert Client(port).get("/").status == 200  # no feeds built yet: still a page
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=20) == 0
    output = server.output()
    assert f"on http://127.0.0.1:{port}/" in output and "Stopped" in output
    assert "Traceback" not in output


def test_a_port_in_use_is_a_one_line_error(web: Web) -> None:
    from .helpers.web_server import server_env

    result = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(web.site / "publisher.toml"), "serve", "--port", str(web.server.port)],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{web.server.port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert Client(web.server.port).get("/").status == 200, "the running server is unharmed"


def test_a_site_under_a_path_is_served_under_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.app.web import create_app

    monkeypatch.setenv(SECRET_ENV, SECRET)
    site = make_web_site(tmp_path / "site", 80)
    path = site / "publisher.toml"
    path.write_text(path.read_text().replace('url = "http://127.0.0.1:80/"', 'url = "https://example.org/news/"'))
    result = CliRunner().invoke(main, ["--config", str(path), "build"])
    assert result.exit_code == 0, result.output
    app = create_app(load_config(path))
    client = app.test_client()
    page = client.get("/news/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'action="/news/subscribe"' in html and 'href="/news/site.css"' in html
    assert 'href="https://example.org/news/feeds/rss.xml"' in html
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "Path=/news/" in cookie  # https site
    assert client.get("/news/feeds/rss.xml").status_code == 200
    assert client.get("/news/rss.xml").status_code == 200
    assert client.get("/").status_code == 404
    assert client.get("/feeds/rss.xml").status_code == 404
    assert client.get("/newsfeeds/rss.xml").status_code == 404


def test_pages_show_dates_in_the_site_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.mail.send import prepare_issue
    from publisher.app.web import create_app

    monkeypatch.setenv(SECRET_ENV, SECRET)
    site = make_web_site(tmp_path / "site", 80)
    path = site / "publisher.toml"
    text = path.read_text()
    path.write_text(text.replace("[site]\n", '[site]\nlanguage = "fr"\ntimezone = "Europe/Paris"\n', 1))
    result = CliRunner().invoke(main, ["--config", str(path), "build"])
    assert result.exit_code == 0, result.output
    config = load_config(path)
    store = StateStore.open(config.state.path)
    try:
        add_subscriber(store.subscribers, "lecteur@example.net", "", ["daily"], source="test", now=NOW)
        # 22:30 UTC on 3 May is 4 May in Paris.
        assert prepare_issue(config, store, config.lists["daily"], now=datetime(2026, 5, 3, 22, 30, tzinfo=timezone.utc))
    finally:
        store.close()
    client = create_app(config).test_client()

    archive = client.get("/issues/")
    assert archive.status_code == 200
    html = archive.get_data(as_text=True)
    assert '<span class="date">· 4 mai 2026</span>' in html
    assert "May" not in html

    index = client.get("/").get_data(as_text=True)
    assert "3 janvier 2024</time>" in index and "2 janvier 2024</time>" in index
    assert "January" not in index
