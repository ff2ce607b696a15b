"""The pages as a reader sees them: headless Chromium (Debian's, through
Playwright) opens a post page, the home page and a tag page through a
running ``publisher serve`` at 375 and 1280 px, light and dark: no
horizontal overflow, no console error (a CSP refusal or a failed load is
one), and axe-core (tests/data/axe, pinned) finds no serious or critical
violation. A feed opened in the browser shows as its styled page."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path

import pytest

from .conftest import NOW, REPO, SteppedClock, invoke
from .helpers.web_server import SECRET, SECRET_ENV, WebServer, free_port, make_web_site

pytestmark = pytest.mark.slow  # a real server and a browser

AXE = REPO / "tests" / "data" / "axe" / "axe.min.js"
def png(width: int, height: int) -> bytes:
    """A real PNG of one colour, so the browser decodes it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x1d\x4e\xd8" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png(1600, 40)  # wider than any screen: the page must still fit
LONG_WORD = "Supercalifragilisticexpialidocious" * 4


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    site = make_web_site(tmp_path_factory.mktemp("browser") / "site", port, pages=True)
    folder = site / "posts" / "pictures"
    folder.mkdir()
    (folder / "chart.png").write_bytes(PNG)
    (folder / "chart.md").write_text(
        "---\ntitle: A chart and a very long word\ndate: 2024-01-04T10:00:00Z\ntags: [Gaza]\nimage: chart.png\n---\n"
        f"The chart:\n\n![A chart of the crossings](chart.png)\n\n{LONG_WORD}\n\n"
        "```\n" + "wide code " * 30 + "\n```\n\n| a | b | c |\n|---|---|---|\n| " + " | ".join(["cell " * 12] * 3) + " |\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(SECRET_ENV, SECRET)
        result = invoke("--config", str(site / "publisher.toml"), "build", clock=SteppedClock(NOW))
        assert result.exit_code == 0, result.output + result.stderr
    with WebServer(site / "publisher.toml", port) as server:
        yield site, server


def axe_source() -> str:
    data = AXE.read_bytes()
    pinned = re.search(r"sha256 of axe.min.js: ([0-9a-f]{64})", (AXE.parent / "README.md").read_text("utf-8"))
    assert pinned and hashlib.sha256(data).hexdigest() == pinned.group(1), "tests/data/axe/axe.min.js is the pinned file"
    return data.decode("utf-8")


def pages(site: Path) -> dict[str, str]:
    post = next(p for p in (site / "public" / "2024" / "01").iterdir() if p.name.startswith("a-chart"))
    seed = next(p for p in (site / "public" / "2014" / "06").iterdir() if p.is_dir())
    return {
        "post": f"/2024/01/{post.name}/",
        "seed": f"/2014/06/{seed.name}/",
        "home": "/",
        "tag": "/tags/gaza/",
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_pages_fit_the_screen_load_cleanly_and_pass_axe(browser, served, tmp_path: Path, width: int, scheme: str) -> None:
    site, server = served
    axe = axe_source()
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    try:
        for name, path in pages(site).items():
            page.goto(server.url.rstrip("/") + path)
            page.wait_for_load_state("load")
            page.screenshot(path=str(tmp_path / f"{name}-{width}-{scheme}.png"), full_page=True)
            assert (tmp_path / f"{name}-{width}-{scheme}.png").stat().st_size > 1000
            sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert sizes[0] <= sizes[1], f"{name} at {width} px overflows: {sizes}"
            sheet = page.evaluate("() => getComputedStyle(document.querySelector('main')).maxWidth")
            assert sheet.endswith("px") and sheet != "none", "style.css applies"
            page.evaluate(axe + "\n;0")
            result = page.evaluate(
                "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
                " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})); }"
            )
            serious = [v for v in result if v["impact"] in ("serious", "critical")]
            assert serious == [], f"{name} at {width} px, {scheme}: {serious}"
        assert errors == [] and failed == [], (errors, failed)
        if scheme == "dark":
            background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(17, 24, 39)", "the dark scheme applies"
    finally:
        context.close()


def test_a_post_page_shows_the_post_its_image_and_comments(browser, served) -> None:
    site, server = served
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        page.goto(server.url.rstrip("/") + pages(site)["post"])
        image = page.locator("main img")
        assert image.get_attribute("alt") == "A chart of the crossings"
        assert image.evaluate("img => img.complete && img.naturalWidth") == 1600, "the image beside the post loads"
        assert image.evaluate("img => img.getBoundingClientRect().width") <= 375
        page.goto(server.url.rstrip("/") + pages(site)["seed"])
        assert page.locator(".comments li").count() >= 1
        assert page.locator(".closed").inner_text() == "Comments are closed."
        assert page.locator("blockquote").count() >= 2
        page.click("a[rel=tag] >> nth=0")
        assert page.url.startswith(server.url + "tags/")
        assert page.locator("h1").inner_text().startswith("Tagged")
    finally:
        context.close()


def test_a_feed_opened_in_the_browser_shows_as_its_styled_page(browser, served) -> None:
    site, server = served
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        for feed in ("feeds/rss.xml", "feeds/atom.xml"):
            page.goto(server.url + feed)
            page.wait_for_selector("p.note")
            assert "This is a web feed" in page.locator("p.note").inner_text()
            assert page.locator("h1").inner_text() == "Web Test Site"
            assert page.locator("h2 a").count() == 2  # [feeds] items = 2
            family = page.evaluate("() => getComputedStyle(document.body).fontFamily")
            assert "Georgia" in family, "the stylesheet's inline style applies"
        assert errors == [], errors
    finally:
        context.close()


def test_a_reader_subscribes_from_the_form_of_a_static_page(browser, served) -> None:
    site, server = served
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.url.rstrip("/") + pages(site)["post"])
        page.fill("#subscribe-email", "from-a-page@example.net")
        page.check("input[name=list][value=weekly]")
        page.click("#subscribe button[type=submit]")
        page.wait_for_selector("h1:has-text('Check your inbox')")
    finally:
        context.close()
