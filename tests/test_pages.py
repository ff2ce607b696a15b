"""The web pages ``publisher build`` writes into ``[pages] out``: a page per
post at exactly the URL its feeds carry, the listings and archives, the
sitemap; deterministic bytes, no rewrite when nothing changed, only the
pages a change shows rewritten, stale pages removed and moved posts
redirected; assets copied; templates overridable and strict."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.config import load_config
from publisher.pages import page_name
from publisher.pages.assets import _ATTRIBUTE, _LinkFinder
from publisher.pages.build import staging_mark

from .conftest import NOW, SteppedClock, invoke, write_config

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x1f\x15\xc4\x89" + bytes(25)


def make_posts(site: Path, count: int = 12) -> None:
    posts = site / "posts"
    for n in range(count):
        tags = '["Gaza", "Diplomacy"]' if n % 3 == 0 else '["Aid"]'
        author = '\nauthor = "Reporter <r@example.org>"' if n % 4 == 0 else ""
        (posts / f"p{n:02d}.txt").write_text(
            f"+++\ndate = 2024-0{1 + n % 3}-{10 + n:02d}T10:00:00Z\ntags = {tags}{author}\n+++\n"
            f"Post number {n}\n\nBBC News reports: Paragraph {n} of the news.\n",
            encoding="utf-8",
        )
    folder = posts / "pictures"
    folder.mkdir()
    (folder / "with-image.md").write_text(
        "---\ntitle: A post with a picture\ndate: 2024-04-01T10:00:00Z\nimage: chart.png\n---\n"
        "See the chart:\n\n![The chart](chart.png)\n\n[Report](files/report.pdf)\n\n![Logo](/assets/logo.svg)\n",
        encoding="utf-8",
    )
    (folder / "chart.png").write_bytes(PNG)
    (folder / "files").mkdir()
    (folder / "files" / "report.pdf").write_bytes(b"%PDF-1.4 a report\n")
    (site / "assets").mkdir()  # a Jekyll site's assets folder, beside the posts folder
    (site / "assets" / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    write_config(root, '\n[pages]\nper_page = 5\n\n[lists.daily]\ntitle = "Daily digest"\n')
    make_posts(root)
    (root / "static").mkdir()
    (root / "static" / "favicon.ico").write_bytes(b"\x00\x00\x01\x00icon")
    text = (root / "publisher.toml").read_text(encoding="utf-8")
    (root / "publisher.toml").write_text(text.replace('paths = ["posts"]', 'paths = ["posts"]\nstatic = ["static"]'))
    return root


def build(site: Path, *extra: str, clock=None) -> str:
    result = invoke("--config", str(site / "publisher.toml"), "build", *extra, clock=clock or SteppedClock(NOW))
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def mtimes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def feed_items(site: Path) -> list[dict]:
    return json.loads((site / "feeds" / "feed.json").read_bytes())["items"]


def page_at(site: Path, url: str) -> Path:
    name = page_name("https://example.org/", url)
    assert name is not None, url
    return site / "public" / name


def test_every_post_has_a_page_at_the_url_its_feeds_carry(site: Path) -> None:
    build(site)
    config = load_config(site / "publisher.toml")
    items = feed_items(site)
    assert len(items) == 13
    for item in items:
        page = page_at(site, item["url"]).read_text(encoding="utf-8")
        assert f"<h1>{item['title']}</h1>" in page
        assert f'<link rel="canonical" href="{item["url"]}">' in page
        assert f'<meta property="og:url" content="{item["url"]}">' in page
        assert '<link rel="alternate" type="application/rss+xml" title="Test Site (RSS)" href="/feeds/rss.xml">' in page
        assert re.search(r'<main id="content">', page) and "<script" not in page
        assert '<form id="subscribe" class="subscribe" method="post" action="/subscribe"' in page
    # The excerpts as the feeds carry them, with their source.
    first = page_at(site, items[-1]["url"]).read_text(encoding="utf-8")
    assert "<cite>BBC News</cite> reports:" in first and "<blockquote>" in first
    picture = next(i for i in items if i["title"] == "A post with a picture")
    html = page_at(site, picture["url"]).read_text(encoding="utf-8")
    assert f'<meta property="og:image" content="{picture["url"]}chart.png">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert config.pages.out == site / "public"


def test_home_tag_author_and_archive_pages_list_every_post(site: Path) -> None:
    build(site)
    public = site / "public"
    items = feed_items(site)
    home = [(public / "index.html").read_text(encoding="utf-8")]
    home += [(public / f"page/{n}/index.html").read_text(encoding="utf-8") for n in (2, 3)]
    assert not (public / "page/4/index.html").exists(), "13 posts, 5 a page: 3 pages"
    listed = [re.findall(r'<h2><a href="([^"]+)">', page) for page in home]
    assert [len(found) for found in listed] == [5, 5, 3]
    assert [p for found in listed for p in found] == [urlsplit(i["url"]).path for i in items], "newest first"
    assert 'rel="next" href="/page/2/"' in home[0] and 'rel="prev" href="/"' in home[1]

    gaza = (public / "tags/gaza/index.html").read_text(encoding="utf-8")
    assert "Tagged “Gaza”" in gaza
    assert '<link rel="alternate" type="application/rss+xml" title="Test Site: Gaza (RSS)" href="/feeds/tags/gaza.xml">' in gaza
    assert (site / "feeds/tags/gaza.xml").is_file(), "the tag page's feed is the tag's feed"
    tagged = sum(1 for i in items if "Gaza" in i.get("tags", []))
    assert gaza.count("<article class=\"summary\">") == min(tagged, 5)
    tags_index = (public / "tags/index.html").read_text(encoding="utf-8")
    assert '<a href="/tags/aid/">Aid</a> <span class="count">(8)</span>' in tags_index
    reporter = (public / "authors/reporter/index.html").read_text(encoding="utf-8")
    assert reporter.count("<article class=\"summary\">") == 3

    months = {p.parent.relative_to(public).as_posix() for p in public.glob("2024/*/index.html")}
    assert months == {"2024/01", "2024/02", "2024/03", "2024/04"}
    january = (public / "2024/01/index.html").read_text(encoding="utf-8")
    in_january = [i for i in items if i["date_published"].startswith("2024-01")]
    assert january.count("<article class=\"summary\">") == len(in_january)
    archives = (public / "archives/index.html").read_text(encoding="utf-8")
    assert '<a href="/2024/01/">2024-01</a> <span class="count">(4)</span>' in archives


def test_sitemap_robots_and_404(site: Path) -> None:
    build(site)
    public = site / "public"
    root = ET.fromstring((public / "sitemap.xml").read_bytes())
    locs = [u.findtext(f"{SITEMAP_NS}loc") for u in root.iter(f"{SITEMAP_NS}url")]
    for item in feed_items(site):
        assert item["url"] in locs
    assert "https://example.org/" in locs and "https://example.org/tags/gaza/" in locs
    assert len(locs) == len(set(locs))
    lastmod = {u.findtext(f"{SITEMAP_NS}loc"): u.findtext(f"{SITEMAP_NS}lastmod") for u in root.iter(f"{SITEMAP_NS}url")}
    assert lastmod[feed_items(site)[0]["url"]].startswith("2024-04-01T10:00:00")
    assert (public / "robots.txt").read_text(encoding="utf-8").endswith("Sitemap: https://example.org/sitemap.xml\n")
    assert "Nothing here" in (public / "404.html").read_text(encoding="utf-8")


def test_assets_posts_link_to_are_copied_where_their_links_lead(site: Path) -> None:
    build(site)
    picture = next(i for i in feed_items(site) if i["title"] == "A post with a picture")
    assert f'src="{picture["url"]}chart.png"' in picture["content_html"]
    assert page_at(site, picture["url"] + "chart.png").read_bytes() == PNG
    assert page_at(site, picture["url"] + "files/report.pdf").read_bytes() == b"%PDF-1.4 a report\n"
    assert (site / "public" / "favicon.ico").read_bytes() == b"\x00\x00\x01\x00icon"
    assert (site / "public" / "assets" / "logo.svg").read_text(encoding="utf-8").startswith("<svg")
    assert not (site / "public" / "publisher.toml").exists()


def test_the_same_content_gives_the_same_bytes(tmp_path: Path, site: Path) -> None:
    build(site)
    other = tmp_path / "other"
    shutil.copytree(site, other, ignore=shutil.ignore_patterns("public", "feeds", ".publisher"))
    build(other, clock=SteppedClock(NOW + timedelta(days=30)))
    assert tree(site / "public") == tree(other / "public")


def test_an_unchanged_build_rewrites_no_page(site: Path) -> None:
    build(site)
    before = mtimes(site / "public")
    output = build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    assert "Pages in public/: 0 written" in output
    assert mtimes(site / "public") == before
    forced = build(site, "--force", clock=SteppedClock(NOW + timedelta(hours=2)))
    assert f"Pages in public/: {len(before)} written" in forced


def test_one_changed_post_rewrites_only_the_pages_that_show_it(site: Path) -> None:
    build(site)
    items = feed_items(site)
    before = mtimes(site / "public")
    post = site / "posts" / "p04.txt"  # tagged Aid, by the Reporter, in February
    post.write_text(post.read_text(encoding="utf-8").replace("Paragraph 4", "Paragraph four"), encoding="utf-8")
    build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    after = mtimes(site / "public")
    changed = {name for name in after if after[name] != before.get(name)}
    url = next(i["url"] for i in items if i["title"] == "Post number 4")
    position = [i["url"] for i in items].index(url)
    home_page = f"page/{position // 5 + 1}/index.html" if position >= 5 else "index.html"
    assert page_name("https://example.org/", url) in changed
    assert home_page in changed and "sitemap.xml" in changed
    assert "2024/02/index.html" in changed and "authors/reporter/index.html" in changed
    assert any(name.startswith("tags/aid/") for name in changed)
    assert "2024/01/index.html" not in changed and "tags/gaza/index.html" not in changed
    others = [page_name("https://example.org/", i["url"]) for i in items if i["url"] != url]
    assert not changed & set(others), "its text changed, not its title: no other post's page shows it"
    assert len(changed) <= 8, sorted(changed)


def test_a_deleted_post_leaves_no_page_and_a_moved_one_a_redirect(site: Path) -> None:
    build(site)
    items = {i["title"]: i["url"] for i in feed_items(site)}
    (site / "posts" / "p01.txt").unlink()
    moved = site / "posts" / "p02.txt"
    moved.write_text(moved.read_text(encoding="utf-8").replace("+++\nPost", 'slug = "renamed"\n+++\nPost'), encoding="utf-8")
    (site / "static" / "favicon.ico").unlink()
    output = build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    assert "1 redirect" in output
    gone = page_at(site, items["Post number 1"])
    assert not gone.exists() and not gone.parent.exists(), "the page and its emptied folder"
    assert not (site / "public" / "favicon.ico").exists(), "a static file removed from the content goes too"
    new_url = next(i["url"] for i in feed_items(site) if i["title"] == "Post number 2")
    assert new_url.endswith("/renamed/") and new_url != items["Post number 2"]
    redirect = page_at(site, items["Post number 2"]).read_text(encoding="utf-8")
    assert f'<meta http-equiv="refresh" content="0; url={new_url}">' in redirect
    assert f'<link rel="canonical" href="{new_url}">' in redirect
    line = f"{urlsplit(items['Post number 2']).path} {urlsplit(new_url).path} 301\n"
    assert (site / "public" / "_redirects").read_text(encoding="utf-8") == line
    # The redirect stays through later builds, and goes with the post.
    build(site, clock=SteppedClock(NOW + timedelta(hours=2)))
    assert page_at(site, items["Post number 2"]).is_file()
    moved.unlink()
    build(site, clock=SteppedClock(NOW + timedelta(hours=3)))
    assert not page_at(site, items["Post number 2"]).exists()
    assert not (site / "public" / "_redirects").exists()


def test_files_the_build_did_not_write_are_left_alone(site: Path) -> None:
    (site / "public").mkdir()
    (site / "public" / "CNAME").write_text("example.org\n", encoding="utf-8")
    build(site)
    (site / "posts" / "p03.txt").unlink()
    build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    assert (site / "public" / "CNAME").read_text(encoding="utf-8") == "example.org\n"


def test_a_site_template_overrides_the_default(site: Path) -> None:
    folder = site / "templates" / "site"
    folder.mkdir(parents=True)
    (folder / "post.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1 class="mine">{{ post.title }}</h1>{% endblock %}', encoding="utf-8"
    )
    build(site)
    page = page_at(site, feed_items(site)[0]["url"]).read_text(encoding="utf-8")
    assert '<h1 class="mine">A post with a picture</h1>' in page
    assert "<footer" in page, "the default base.html still applies"


def test_a_site_summary_template_shows_in_every_list_and_on_no_post_page(site: Path) -> None:
    folder = site / "templates" / "site"
    folder.mkdir(parents=True)
    (folder / "summary.html").write_text('<p class="mine">{{ post.title }}</p>\n', encoding="utf-8")
    build(site)
    public = site / "public"
    for name in ("index.html", "page/2/index.html", "tags/aid/index.html", "authors/editor/index.html", "2024/01/index.html"):
        page = (public / name).read_text(encoding="utf-8")
        assert re.findall(r'<p class="mine">([^<]+)</p>', page), name
        assert '<article class="summary">' not in page, name
    post = page_at(site, feed_items(site)[0]["url"]).read_text(encoding="utf-8")
    assert 'class="mine"' not in post


def test_a_killed_build_leaves_temporary_files_that_the_next_removes(site: Path) -> None:
    build(site)
    config = load_config(site / "publisher.toml")
    mark = staging_mark(config)
    assert not mark.exists(), "no mark once the pages are in place"
    # What a build killed while staging leaves: its mark, and temporary files beside pages.
    page = page_at(site, feed_items(site)[0]["url"])
    left = [page.with_name(".index.html.k1ll3d_1.tmp"), site / "public" / "tags" / ".index.html.k1ll3d_2.tmp"]
    for path in left:
        path.write_bytes(b"half a page")
    mark.write_bytes(b"")
    before = mtimes(site / "public")
    build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    assert not [p for p in left if p.exists()] and not mark.exists()
    after = mtimes(site / "public")
    assert after == {name: t for name, t in before.items() if name not in {p.relative_to(site / "public").as_posix() for p in left}}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [" ", "\n", "  ", "src", "SRC", "href", "poster", "title", "=", " = ", '"', "'", "<", ">", "a", "://",
             "https:", "//example.org/", "https://example.org/", "HTTPS://Example.org/", "https://example.org/a b",
             "https://other.org/", " " * 70, "src" + " " * 70 + "=", "=" + " " * 80]
        ),
        max_size=30,
    )
)
def test_the_links_to_the_site_are_those_the_attribute_pattern_finds(pieces: list[str]) -> None:
    html = "".join(pieces)
    url = "https://example.org/"
    assert _LinkFinder(url).findall(html) == re.findall(_ATTRIBUTE % re.escape(url), html, re.IGNORECASE)


def test_an_undefined_name_is_an_error_naming_the_template_and_no_page_changes(site: Path) -> None:
    build(site)
    before = tree(site / "public")
    folder = site / "templates" / "site"
    folder.mkdir(parents=True)
    (folder / "post.html").write_text('{% extends "base.html" %}\n{% block content %}{{ post.titel }}{% endblock %}', encoding="utf-8")
    result = invoke("--config", str(site / "publisher.toml"), "build", clock=SteppedClock(NOW + timedelta(hours=1)))
    assert result.exit_code == 2
    assert "post.html:2" in result.stderr and "titel" in result.stderr
    assert tree(site / "public") == before
    assert not [p for p in (site / "public").rglob(".*.tmp")], "no temporary file left"


def test_check_finds_a_broken_page_template_and_writes_nothing(site: Path) -> None:
    folder = site / "templates" / "site"
    folder.mkdir(parents=True)
    (folder / "terms.html").write_text('{% extends "base.html" %}\n{% block content %}{{ termz }}{% endblock %}', encoding="utf-8")
    result = invoke("--config", str(site / "publisher.toml"), "check", clock=SteppedClock(NOW))
    assert result.exit_code == 2
    assert "terms.html:2" in result.stderr and "termz" in result.stderr
    assert not (site / "public").exists()
    (folder / "terms.html").unlink()
    assert invoke("--config", str(site / "publisher.toml"), "check", clock=SteppedClock(NOW)).exit_code == 0


def test_pages_can_be_turned_off(site: Path) -> None:
    text = (site / "publisher.toml").read_text(encoding="utf-8")
    (site / "publisher.toml").write_text(text.replace("per_page = 5", "per_page = 5\nenabled = false"))
    output = build(site)
    assert not (site / "public").exists()
    assert "Pages in" not in output


def test_a_post_whose_url_is_elsewhere_gets_no_page(site: Path) -> None:
    (site / "posts" / "away.txt").write_text(
        '+++\ndate = 2024-05-01T10:00:00Z\nurl = "https://elsewhere.example/post"\n+++\nLives elsewhere\n\nText.\n',
        encoding="utf-8",
    )
    build(site)
    assert page_name("https://example.org/", "https://elsewhere.example/post") is None
    home = (site / "public" / "index.html").read_text(encoding="utf-8")
    assert '<a href="https://elsewhere.example/post">Lives elsewhere</a>' in home


def test_unicode_slugs_get_their_folder_and_encoded_links(site: Path) -> None:
    (site / "posts" / "war.txt").write_text(
        "+++\ndate = 2024-05-01T10:00:00Z\ntags = [\"Война\"]\n+++\nВойна и мир\n\nТекст.\n", encoding="utf-8"
    )
    build(site)
    url = feed_items(site)[0]["url"]
    assert "%D0%B2" in url
    assert (site / "public" / unquote(urlsplit(url).path).lstrip("/") / "index.html").is_file()
    home = (site / "public" / "index.html").read_text(encoding="utf-8")
    assert f'<a href="{urlsplit(url).path}">Война и мир</a>' in home
    assert (site / "public" / "tags" / "война" / "index.html").is_file()


def test_the_page_name_of_a_url() -> None:
    base = "https://example.org/blog/"
    assert page_name(base, "https://example.org/blog/") == "index.html"
    assert page_name(base, "https://example.org/blog/2024/05/x/") == "2024/05/x/index.html"
    assert page_name(base, "https://example.org/blog/x.html") == "x.html"
    assert page_name(base, "https://example.org/other/") is None
    assert page_name(base, "https://example.org/blog/a/../../etc/") is None
    assert page_name(base, "https://example.org/blog/.git/config") is None
    assert page_name(base, "https://example.org/blog/x/?p=1") is None


def test_aliases_redirect_to_the_post(site: Path) -> None:
    post = site / "posts" / "p05.txt"
    post.write_text(post.read_text(encoding="utf-8").replace("+++\nPost", 'aliases = ["/2019/old-name/", "https://example.org/old.html"]\n+++\nPost'), encoding="utf-8")
    build(site)
    url = next(i["url"] for i in feed_items(site) if i["title"] == "Post number 5")
    for name in ("2019/old-name/index.html", "old.html"):
        page = (site / "public" / name).read_text(encoding="utf-8")
        assert f'<meta http-equiv="refresh" content="0; url={url}">' in page, name
    lines = (site / "public" / "_redirects").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted([f"/2019/old-name/ {urlsplit(url).path} 301", f"/old.html {urlsplit(url).path} 301"])
    # An alias dropped from the post leaves no page behind.
    post.write_text(post.read_text(encoding="utf-8").replace(', "https://example.org/old.html"', ""), encoding="utf-8")
    build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    assert not (site / "public" / "old.html").exists() and (site / "public" / "2019/old-name/index.html").is_file()


def test_an_alias_that_is_not_a_path_rejects_the_post(site: Path) -> None:
    (site / "posts" / "bad.txt").write_text('+++\naliases = ["../../etc/"]\n+++\nBad\n\nText.\n', encoding="utf-8")
    result = invoke("--config", str(site / "publisher.toml"), "build", clock=SteppedClock(NOW))
    assert result.exit_code == 1
    assert "posts/bad.txt:2: aliases:" in result.stderr


def test_a_new_issue_changes_only_the_issue_archive(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET", "s" * 32)
    config = str(site / "publisher.toml")
    clock = SteppedClock(NOW)
    build(site, clock=clock)
    assert not (site / "public" / "issues").exists()
    # A new list's first issue holds only what is new since the list began: --backfill mails the old posts.
    for command in (["subscribers", "add", "reader@example.net"], ["send", "--list", "daily", "--backfill", "5"]):
        assert invoke("--config", config, *command, clock=clock).exit_code == 0
    build(site, clock=clock)
    archive = (site / "public" / "issues" / "daily" / "index.html").read_text(encoding="utf-8")
    assert archive.count('href="/issues/daily/1/"') == 1
    assert '<a href="/issues/">Newsletter</a>' in (site / "public" / "index.html").read_text(encoding="utf-8")
    (site / "posts" / "new.txt").write_text("+++\ndate = 2026-11-29T12:30:00Z\n+++\nA new post\n\nText.\n", encoding="utf-8")
    build(site, clock=SteppedClock(NOW + timedelta(hours=1)))
    assert invoke("--config", config, "send", "--list", "daily", clock=SteppedClock(NOW + timedelta(hours=2))).exit_code == 0
    before = mtimes(site / "public")
    build(site, clock=SteppedClock(NOW + timedelta(hours=3)))
    after = mtimes(site / "public")
    assert {name for name in after if after[name] != before.get(name)} == {"issues/index.html", "issues/daily/index.html"}
