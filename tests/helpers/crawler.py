"""A crawler for the link tests: follows every same-site link from a set of
start URLs through a running ``publisher serve`` and records what failed.

    crawl = Crawler(client, site_url="http://127.0.0.1:8123/")
    crawl.visit(["/", "/feeds/rss.xml"])
    assert crawl.failures == []
    crawl.seen        # every path fetched, with its final status

Links are read from HTML (``href``, ``src``, ``srcset``, ``poster``,
``action`` of GET forms), XML (feeds, the sitemap: ``link``/``href``,
``loc``, ``guid`` permalinks, ``comments``, ``wfw:commentRss``) and JSON
Feed (``url``, ``image``, ``home_page_url``, ``feed_url``). A redirect is
followed (at most five hops; a hop back to a URL already in the chain is a
loop); anything ending in 4xx or 5xx is a failure naming the page that
linked to it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

MAX_HOPS = 5


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src", "poster"):
            if values.get(name):
                self.links.append(values[name])  # type: ignore[arg-type]
        if values.get("srcset"):
            self.links += [part.strip().split(" ")[0] for part in values["srcset"].split(",") if part.strip()]  # type: ignore[union-attr]
        if tag == "form" and (values.get("method") or "get").lower() == "get" and values.get("action"):
            self.links.append(values["action"])  # type: ignore[arg-type]


def html_links(text: str) -> list[str]:
    parser = _Links()
    parser.feed(text)
    return parser.links


def xml_links(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    found = []
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if element.get("href"):
            found.append(element.get("href"))
        # RSS's <comments> is a URL; slash:comments is a count.
        named = local in ("loc", "link", "commentRss", "docs") or element.tag == "comments"
        if named and element.text and element.text.strip():
            found.append(element.text.strip())
        if local == "guid" and element.get("isPermaLink", "true") == "true" and element.text:
            found.append(element.text.strip())
    for instruction in re.findall(rb'<\?xml-stylesheet[^>]*href="([^"]+)"', data):
        found.append(instruction.decode("utf-8"))
    return found


def json_links(data: bytes) -> list[str]:
    feed = json.loads(data)
    found = [feed.get(k) for k in ("home_page_url", "feed_url", "icon", "favicon")]
    for item in feed.get("items", []):
        found += [item.get(k) for k in ("url", "image", "banner_image")]
    return [link for link in found if isinstance(link, str)]


@dataclass
class Crawler:
    client: object  # tests.helpers.web_server.Client
    site_url: str
    seen: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    linked_from: dict[str, str] = field(default_factory=dict)

    def local(self, link: str, base: str) -> str | None:
        """The path (and query) of ``link`` on this site, or None for another site's."""
        absolute = urljoin(base, link.strip())
        parts = urlsplit(absolute)
        site = urlsplit(self.site_url)
        if parts.scheme not in ("http", "https") or parts.netloc != site.netloc:
            return None
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def visit(self, starts: list[str], origin: str = "(start)") -> None:
        queue = [(path, origin) for path in starts]
        while queue:
            path, source = queue.pop()
            if path in self.seen:
                continue
            status, body, kind, final = self._fetch(path, source)
            self.seen[path] = status
            if status >= 400 or body is None:
                continue
            base = urljoin(self.site_url, final)
            for link in self._links(body, kind, path):
                if link.startswith(("mailto:", "data:", "#", "tel:")):
                    continue
                found = self.local(link, base)
                if found is not None and found not in self.seen:
                    self.linked_from.setdefault(found, path)
                    queue.append((found, path))

    def _fetch(self, path: str, source: str) -> tuple[int, bytes | None, str, str]:
        chain = [path]
        current = path
        for _ in range(MAX_HOPS + 1):
            reply = self.client.get(current)  # type: ignore[attr-defined]
            if reply.status in (301, 302, 303, 307, 308):
                target = self.local(reply.headers["Location"], urljoin(self.site_url, current))
                if target is None:
                    return reply.status, None, "", current
                if target in chain:
                    self.failures.append(f"{path} (linked from {source}): a redirect loop {' -> '.join(chain + [target])}")
                    return 508, None, "", current
                chain.append(target)
                current = target
                continue
            if reply.status >= 400:
                self.failures.append(f"{path} (linked from {source}): {reply.status}")
            return reply.status, reply.body, reply.headers.get("Content-Type", ""), current
        self.failures.append(f"{path} (linked from {source}): more than {MAX_HOPS} redirects")
        return 508, None, "", current

    @staticmethod
    def _links(body: bytes, kind: str, path: str) -> list[str]:
        if kind.startswith("text/html"):
            return html_links(body.decode("utf-8"))
        if "xml" in kind and not kind.startswith("application/xslt"):
            return xml_links(body)
        if "json" in kind:
            return json_links(body)
        return []
