"""The digest's HTML part in a real browser: headless Chromium at 600 and 375 px.

Debian's ``chromium`` driven by Playwright (``make test`` installs both; never
``playwright install``, which downloads a browser build of its own). Images
are answered from memory and every other request is refused, so the page
renders exactly what an email client would get, with no network.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from publisher.mail.render import personalize, render_issue

from .helpers.issues import SITE, long_posts, recipient, sample_issue

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

WIDTHS = (600, 375)


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour, made here: the stand-in for every post image."""
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the pixel data) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, width, height, idat = 8, 0, 0, b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


# A wide image (twice the layout's width) shows whether width="552" and
# max-width hold it inside the column.
POST_IMAGE = solid_png(1104, 500, (90, 130, 190))


def open_email(browser, html: str, width: int, scheme: str = "light"):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)

    def answer(route) -> None:
        if route.request.resource_type == "image":
            route.fulfill(body=POST_IMAGE, content_type="image/png")
        else:
            route.abort()

    page.route("**/*", answer)
    page.set_content(html, wait_until="load")
    return page


OVERFLOW = """() => {
  const limit = window.innerWidth + 0.5;
  const out = [];
  for (const el of document.querySelectorAll('img, table, td, p, h1, h2, blockquote, a')) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.left < -0.5 || box.right > limit)) {
      out.push(`${el.tagName}.${el.className}: ${box.left}..${box.right}`);
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def email() -> tuple[tuple[str, ...], str]:
    issue = sample_issue(full_content=True)
    html, _ = personalize(render_issue(issue, SITE), recipient())
    return tuple(post.title for post in issue.posts), html


@pytest.mark.parametrize("width", WIDTHS)
def test_posts_render_within_the_viewport(browser, email, width: int, tmp_path: Path) -> None:
    titles, html = email
    page = open_email(browser, html, width)
    try:
        for title in titles:
            assert page.locator("h2.post-title a", has_text=title).is_visible(), title
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert inner_width == width
        assert scroll_width <= inner_width, "the page scrolls sideways"
        assert page.evaluate(OVERFLOW) == []
        image = page.locator("img.post-image")
        assert image.evaluate("img => img.complete && img.naturalWidth") == 1104
        box = image.bounding_box()
        assert box["width"] <= min(552, width)
        assert abs(box["height"] / box["width"] - 500 / 1104) < 0.02, "the image kept its proportions"
        # The preheader is in the page but not shown.
        assert not page.locator("div.preheader").is_visible()
        shot = tmp_path / f"digest-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    png_width, png_height, distinct = png_facts(shot.read_bytes())
    assert png_width == width and png_height > 900
    assert distinct > 32, "the screenshot is blank"


def test_dark_mode_changes_the_colours(browser, email) -> None:
    _, html = email
    colours = {}
    for scheme in ("light", "dark"):
        page = open_email(browser, html, 375, scheme)
        try:
            colours[scheme] = page.evaluate(
                "[getComputedStyle(document.body).backgroundColor,"
                " getComputedStyle(document.querySelector('h2.post-title a')).color]"
            )
        finally:
            page.close()
    assert colours["light"][0] == "rgb(243, 244, 246)"
    assert colours["dark"][0] == "rgb(13, 17, 23)"
    assert colours["dark"][1] != colours["light"][1]


def test_a_capped_issue_fits_375(browser) -> None:
    issue = sample_issue(full_content=True, posts=long_posts(30), max_bytes=40_000)
    rendered = render_issue(issue, SITE)
    assert rendered.linked_posts
    html, _ = personalize(rendered, recipient())
    page = open_email(browser, html, 375)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate(OVERFLOW) == []
        assert page.locator("a.button", has_text="Read the rest online").is_visible()
        assert page.locator("p.linked-post a").count() == rendered.linked_posts
    finally:
        page.close()
