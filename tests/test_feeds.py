"""The feeds, read back by a real feed client and checked against the schemas."""

from __future__ import annotations

import calendar
import dataclasses
import json
from pathlib import Path
from urllib.parse import quote, unquote

from datetime import datetime, timezone

import feedparser
import jsonschema
import pytest
from lxml import etree

from publisher.feeds.formats import build_feeds
from publisher.model import Comment

from .conftest import NOW, REPO, build, write_config
from .helpers.feeds import ATOM_NS, SCHEMAS, read_feed

FEEDS = ("rss.xml", "atom.xml", "feed.json")


def published(entry) -> datetime:
    if entry.get("published_parsed"):
        return datetime.fromtimestamp(calendar.timegm(entry.published_parsed), timezone.utc)
    return datetime.fromisoformat(entry.published)


@pytest.fixture
def built(sample_site: Path) -> Path:
    report = build(sample_site)
    assert report.errors == ()
    return sample_site / "feeds"


@pytest.mark.parametrize("name", FEEDS)
def test_feedparser_reads_the_seed(built: Path, name: str) -> None:
    parsed = read_feed(built / name)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.feed.title == "War in Context"
    assert parsed.feed.link == "https://example.org/"
    (entry,) = parsed.entries
    assert entry.title == "The U.S. has been speaking to Hamas through back channels for more than six months"
    assert entry.link == (
        "https://example.org/2014/06/"
        "the-us-has-been-speaking-to-hamas-through-back-channels-for-more-than-six-months/"
    )
    # 09:12 in New York on 5 June 2014 (the sidecar's date) is 13:12 UTC.
    assert published(entry) == datetime(2014, 6, 5, 13, 12, tzinfo=timezone.utc)
    assert entry.author == "Editor" or entry.author.startswith("Editor")
    assert entry.id.startswith("tag:example.org,2014-06-05:")
    html = entry.content[0]["value"]
    assert "Sheera Frenkel" in html and "BBC News" in html
    assert "United States officials have been holding secret back-channel talks" in html
    assert "watched “very closely”" in html
    assert [t["term"] for t in entry.tags] == ["Hamas", "United States", "Palestine"]


def test_atom_validates_against_rfc4287_schema(built: Path) -> None:
    schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    doc = etree.parse(str(built / "atom.xml"))
    assert schema.validate(doc), schema.error_log
    # RFC 4287 4.1.1: an author on the feed or on every entry (a Schematron rule
    # the RELAX NG schema leaves out).
    root = doc.getroot()
    entries = root.findall(f"{ATOM_NS}entry")
    assert root.find(f"{ATOM_NS}author") is not None or all(
        e.find(f"{ATOM_NS}author") is not None for e in entries
    )
    links = {(l.get("rel"), l.get("href")) for l in root.findall(f"{ATOM_NS}link")}
    assert ("self", "https://example.org/feeds/atom.xml") in links
    assert ("alternate", "https://example.org/") in links
    entry = entries[0]
    assert entry.find(f"{ATOM_NS}content").get("type") == "html"
    assert entry.find(f"{ATOM_NS}summary").text.startswith("Sheera Frenkel reports:")
    assert root.find(f"{ATOM_NS}updated").text == "2014-06-05T13:12:00+00:00"


def test_json_feed_validates_against_schema(built: Path) -> None:
    schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text())
    feed = json.loads((built / "feed.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [e.message for e in validator.iter_errors(feed)]
    assert errors == []
    assert feed["feed_url"] == "https://example.org/feeds/feed.json"
    (item,) = feed["items"]
    assert item["date_published"] == "2014-06-05T13:12:00+00:00"
    assert "<cite>BBC News</cite>" in item["content_html"]


def test_schemas_reject_broken_feeds(built: Path) -> None:
    """The validators used above can fail: a broken feed does not pass them."""
    schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    doc = etree.parse(str(built / "atom.xml"))
    entry = doc.getroot().find(f"{ATOM_NS}entry")
    entry.remove(entry.find(f"{ATOM_NS}id"))
    assert not schema.validate(doc)
    feed = json.loads((built / "feed.json").read_text(encoding="utf-8"))
    del feed["items"][0]["id"]
    json_schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(feed, json_schema, format_checker=jsonschema.FormatChecker())


def test_rss_has_the_expected_elements(built: Path) -> None:
    ns = {
        "atom": "http://www.w3.org/2005/Atom",
        "content": "http://purl.org/rss/1.0/modules/content/",
        "dc": "http://purl.org/dc/elements/1.1/",
    }
    channel = etree.parse(str(built / "rss.xml")).getroot().find("channel")
    self_link = channel.find("atom:link", ns)
    assert (self_link.get("rel"), self_link.get("href")) == ("self", "https://example.org/feeds/rss.xml")
    assert channel.findtext("link") == "https://example.org/"
    assert channel.findtext("lastBuildDate") == "Thu, 05 Jun 2014 13:12:00 +0000"
    item = channel.find("item")
    assert item.find("content:encoded", ns).text.startswith('<p class="excerpt-source">')
    assert item.findtext("description").startswith("Sheera Frenkel reports:")
    assert item.findtext("dc:creator", namespaces=ns) == "Editor"
    assert [c.text for c in item.findall("category")] == ["Hamas", "United States", "Palestine"]
    guid = item.find("guid")
    assert guid.get("isPermaLink") == "false" and guid.text.startswith("tag:example.org,")


def test_committed_feeds_are_what_a_fresh_build_writes(built: Path) -> None:
    for name in FEEDS:
        assert (built / name).read_bytes() == (REPO / "feeds" / name).read_bytes(), name


def test_builds_are_deterministic_and_rewrite_nothing(sample_site: Path, tmp_path: Path) -> None:
    first = build(sample_site)
    assert set(FEEDS) <= set(first.written)
    stamps = {n: (sample_site / "feeds" / n).stat().st_mtime_ns for n in FEEDS}
    contents = {n: (sample_site / "feeds" / n).read_bytes() for n in FEEDS}
    later = NOW.replace(year=2027)
    second = build(sample_site, now=later)
    assert second.written == ()
    assert {n: (sample_site / "feeds" / n).stat().st_mtime_ns for n in FEEDS} == stamps
    # An independent build elsewhere, on another day, gives the same bytes.
    import shutil

    other = tmp_path / "other"
    shutil.copytree(sample_site, other, ignore=shutil.ignore_patterns("feeds", ".publisher"))
    build(other, now=later)
    assert {n: (other / "feeds" / n).read_bytes() for n in FEEDS} == contents


def _post(site: Path, name: str, text: str) -> None:
    (site / "posts" / name).write_text(text, encoding="utf-8")


def test_items_limit_keeps_the_newest(blank_site: Path) -> None:
    write_config(blank_site, extra="[feeds]\nitems = 3\n")
    for day in range(1, 8):
        _post(blank_site, f"p{day}.txt", f"+++\ndate = 2024-01-0{day}T10:00:00Z\n+++\nPost {day}\n\nBody {day}.\n")
    build(blank_site)
    for name in FEEDS:
        parsed = read_feed(blank_site / "feeds" / name)
        assert [e.title for e in parsed.entries] == ["Post 7", "Post 6", "Post 5"], name


def test_summary_only_feeds(blank_site: Path) -> None:
    write_config(blank_site, extra="[feeds]\nfull_content = false\n")
    _post(blank_site, "a.txt", "+++\ndate = 2024-01-01T10:00:00Z\n+++\nA\n\nThe body text.\n")
    build(blank_site)
    rss = (blank_site / "feeds" / "rss.xml").read_text()
    assert "content:encoded" not in rss and "<description>The body text.</description>" in rss
    item = json.loads((blank_site / "feeds" / "feed.json").read_text())["items"][0]
    assert "content_html" not in item and item["content_text"] == "The body text."


def test_control_characters_never_reach_the_xml(blank_site: Path) -> None:
    _post(
        blank_site,
        "ctl.txt",
        "+++\ndate = 2024-01-01T10:00:00Z\n+++\nBell\x07 title\x1b\n\nBody \x00with\x0b controls\ufffe.\n",
    )
    report = build(blank_site)
    assert report.errors == ()
    for name in FEEDS:
        parsed = read_feed(blank_site / "feeds" / name)
        assert parsed.bozo == 0, name
        assert parsed.entries[0].title == "Bell title"
        assert "Body with controls." in parsed.entries[0].content[0]["value"]


def test_entry_without_author_uses_the_site_author_and_own_author_wins(blank_site: Path) -> None:
    _post(blank_site, "a.txt", "+++\ndate = 2024-01-01T10:00:00Z\n+++\nA\n\nx\n")
    _post(
        blank_site,
        "b.txt",
        '+++\ndate = 2024-01-02T10:00:00Z\nauthor = "Jane Roe <jane@example.org>"\n+++\nB\n\nx\n',
    )
    build(blank_site)
    parsed = feedparser.parse((blank_site / "feeds" / "atom.xml").read_bytes())
    assert [(e.title, e.author_detail.name) for e in parsed.entries] == [("B", "Jane Roe"), ("A", "Editor")]


# -- tag, author, comment and archive feeds -----------------------------------

HISTORY = "{http://purl.org/syndication/history/1.0}"


def _dated(site: Path, name: str, day: int, extra: str = "", body: str = "x") -> None:
    _post(site, name, f"+++\ndate = 2024-01-{day:02d}T10:00:00Z\n{extra}\n+++\n{name}\n\n{body}\n")


def _all_feeds(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".xml", ".json"))


def test_every_feed_written_reads_cleanly_and_validates(sample_site: Path) -> None:
    """Main, tag, author and comment feeds: a feed client reads each, the schemas pass."""
    build(sample_site)
    folder = sample_site / "feeds"
    atom_schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    json_schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text())
    checker = jsonschema.FormatChecker()
    names = [p.relative_to(folder).as_posix() for p in _all_feeds(folder)]
    assert {"tags/hamas.xml", "tags/hamas.atom.xml", "tags/hamas.json", "authors/editor.atom.xml", "comments.xml"} <= set(names)
    for path in _all_feeds(folder):
        parsed = read_feed(path)
        assert parsed.bozo == 0, path
        assert parsed.entries, path
        if path.name.endswith(".atom.xml") or path.name == "atom.xml":
            assert atom_schema.validate(etree.parse(str(path))), (path, atom_schema.error_log)
        if path.suffix == ".json":
            jsonschema.validate(json.loads(path.read_text()), json_schema, format_checker=checker)


def test_tag_and_author_feeds_hold_their_posts(blank_site: Path) -> None:
    _dated(blank_site, "a.txt", 1, 'tags = ["Gaza", "Diplomacy"]')
    _dated(blank_site, "b.txt", 2, 'tags = ["Diplomacy"]\nauthor = "Jane Roe"')
    _dated(blank_site, "c.txt", 3)
    build(blank_site)
    feeds = blank_site / "feeds"
    assert [e.title for e in read_feed(feeds / "tags" / "diplomacy.atom.xml").entries] == ["b.txt", "a.txt"]
    assert [e.title for e in read_feed(feeds / "tags" / "gaza.json").entries] == ["a.txt"]
    parsed = read_feed(feeds / "tags" / "gaza.xml")
    assert parsed.feed.title == "Test Site: Gaza"
    self_links = [l.href for l in parsed.feed.links if l.rel == "self"]
    assert self_links == ["https://example.org/feeds/tags/gaza.xml"]
    assert [e.title for e in read_feed(feeds / "authors" / "jane-roe.xml").entries] == ["b.txt"]
    assert [e.title for e in read_feed(feeds / "authors" / "editor.xml").entries] == ["c.txt", "a.txt"]


def test_comment_counts_and_comments_feed(sample_site: Path) -> None:
    build(sample_site)
    ns = {"slash": "http://purl.org/rss/1.0/modules/slash/", "wfw": "http://wellformedweb.org/CommentAPI/"}
    item = etree.parse(str(sample_site / "feeds" / "rss.xml")).getroot().find("channel/item")
    assert item.findtext("slash:comments", namespaces=ns) == "1"
    assert item.findtext("wfw:commentRss", namespaces=ns) == "https://example.org/feeds/comments.xml"
    assert item.findtext("comments").endswith("/#comments")
    parsed = read_feed(sample_site / "feeds" / "comments.xml")
    (comment,) = parsed.entries
    assert comment.author == "pabelmont"
    assert comment.link.endswith("-months/#comment-1")
    assert "Trust he is also watching" in comment.content[0]["value"]
    assert "Palestinians must renounce violencve" in comment.content[0]["value"]


def test_comment_text_is_escaped_and_its_quotes_kept(sample_site: Path) -> None:
    site = build(sample_site).site
    said = Comment(1, "Ann", ("He said \"no\" & 'yes' <b>",), date=NOW)
    post = dataclasses.replace(site.posts[0], comments=(said,))
    data = build_feeds(dataclasses.replace(site, posts=(post, *site.posts[1:])))["comments.xml"]
    assert b"<content:encoded>&lt;p&gt;He said \"no\" &amp;amp; 'yes' &amp;lt;b&amp;gt;&lt;/p&gt;</content:encoded>" in data


def test_no_comments_no_comments_feed(blank_site: Path) -> None:
    _dated(blank_site, "a.txt", 1)
    build(blank_site)
    assert not (blank_site / "feeds" / "comments.xml").exists()
    assert "slash" not in (blank_site / "feeds" / "rss.xml").read_text()


def test_archives_chain_to_every_post(blank_site: Path) -> None:
    """RFC 5005: following prev-archive from the feed reaches every post exactly once."""
    write_config(blank_site, extra="[feeds]\nitems = 3\n")
    for day in range(1, 9):
        _dated(blank_site, f"p{day}.txt", day)
    build(blank_site)
    feeds = blank_site / "feeds"
    atom_schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    for kind, main in (("atom", "atom.xml"), ("rss", "rss.xml")):
        seen: list[str] = []
        doc = feedparser.parse((feeds / main).read_bytes())
        seen += [e.title for e in doc.entries]
        hops = 0
        while True:
            prev = [l.href for l in doc.feed.get("links", []) if l.rel == "prev-archive"]
            if not prev:
                break
            path = feeds / prev[0].removeprefix("https://example.org/feeds/")
            assert path.name.startswith(kind)
            raw = etree.parse(str(path)).getroot()
            assert raw.find(f".//{HISTORY}archive") is not None, path
            if kind == "atom":
                assert atom_schema.validate(etree.parse(str(path))), atom_schema.error_log
            doc = feedparser.parse(path.read_bytes())
            assert doc.bozo == 0
            seen += [e.title for e in doc.entries]
            hops += 1
        assert hops == 2
        assert sorted(set(seen)) == sorted(f"p{d}.txt" for d in range(1, 9)), kind
    # Full pages only: the oldest six posts in two archives of three.
    archive1 = feedparser.parse((feeds / "archive" / "atom-1.xml").read_bytes())
    assert [e.title for e in archive1.entries] == ["p3.txt", "p2.txt", "p1.txt"]


def test_archive_pages_do_not_change_when_new_posts_arrive(blank_site: Path) -> None:
    write_config(blank_site, extra="[feeds]\nitems = 2\n")
    for day in range(1, 6):
        _dated(blank_site, f"p{day}.txt", day)
    build(blank_site)
    page1 = (blank_site / "feeds" / "archive" / "atom-1.xml").read_bytes()
    _dated(blank_site, "p6.txt", 6)
    report = build(blank_site)
    assert "archive/atom-1.xml" not in report.written
    assert (blank_site / "feeds" / "archive" / "atom-1.xml").read_bytes() == page1
    assert "archive/atom-3.xml" in report.written


def test_hub_links_in_every_format(blank_site: Path) -> None:
    write_config(blank_site, extra='[feeds]\nhub = "http://127.0.0.1:9/hub"\n')
    _dated(blank_site, "a.txt", 1)
    from publisher.feeds.build import feed_options
    from publisher.config import load_config
    from publisher.content import load_posts, publish
    from publisher.feeds.formats import build_feeds
    from publisher.state.store import StateStore

    config = load_config(blank_site / "publisher.toml")
    store = StateStore.open(blank_site / "state.db")
    with store.transaction():
        site, _ = publish(load_posts(config).posts, store=store.posts, now=NOW, config=config)
    files = build_feeds(site, feed_options(config))
    for name in ("rss.xml", "atom.xml"):
        links = feedparser.parse(files[name]).feed.links
        assert ("hub", "http://127.0.0.1:9/hub") in [(l.rel, l.href) for l in links], name
    assert json.loads(files["feed.json"])["hubs"] == [{"type": "WebSub", "url": "http://127.0.0.1:9/hub"}]


def _tag_feeds(feeds: Path) -> set[str]:
    return {p.name for p in (feeds / "tags").iterdir()}


def _self_link(path: Path) -> str:
    if path.suffix == ".json":
        return json.loads(path.read_bytes())["feed_url"]
    return next(link.href for link in feedparser.parse(path.read_bytes()).feed.links if link.rel == "self")


def test_tags_in_other_scripts_get_a_feed_each(blank_site: Path) -> None:
    _dated(blank_site, "a.txt", 1, 'tags = ["Война"]')
    _dated(blank_site, "b.txt", 2, 'tags = ["Мир"]')
    _dated(blank_site, "c.txt", 3, 'tags = ["Мир", "Война"]')
    report = build(blank_site)
    assert report.errors == ()
    feeds = blank_site / "feeds"
    assert _tag_feeds(feeds) == {f"{slug}{ext}" for slug in ("война", "мир") for ext in (".xml", ".atom.xml", ".json")}
    atom_schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    for tag, titles in (("Война", ["c.txt", "a.txt"]), ("Мир", ["c.txt", "b.txt"])):
        for ext in (".xml", ".atom.xml", ".json"):
            path = feeds / "tags" / f"{tag.lower()}{ext}"
            parsed = read_feed(path)
            assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
            assert parsed.feed.title == f"Test Site: {tag}"
            assert [e.title for e in parsed.entries] == titles
            # The self link is a URI (the name percent-encoded) of this very file.
            link = _self_link(path)
            assert link.isascii() and link == "https://example.org/feeds/tags/" + quote(path.name)
            assert unquote(link) == "https://example.org/feeds/tags/" + path.name
        atom = feeds / "tags" / f"{tag.lower()}.atom.xml"
        assert atom_schema.validate(etree.parse(str(atom))), atom_schema.error_log


def test_tags_that_slugify_alike_never_share_a_feed(blank_site: Path) -> None:
    _dated(blank_site, "cpp.txt", 1, 'tags = ["C++"]')
    _dated(blank_site, "csharp.txt", 2, 'tags = ["C#"]')
    _dated(blank_site, "c.txt", 3, 'tags = ["C"]')
    _dated(blank_site, "both.txt", 4, 'tags = ["C#", "C++"]')
    _dated(blank_site, "party.txt", 5, 'tags = ["🎉"]')
    _dated(blank_site, "fireworks.txt", 6, 'tags = ["🎆"]')
    build(blank_site)
    feeds = blank_site / "feeds"
    rss = sorted(name for name in _tag_feeds(feeds) if not name.endswith((".atom.xml", ".json")))
    assert len(rss) == 5, rss
    seen = {}
    for name in rss:
        parsed = read_feed(feeds / "tags" / name)
        assert parsed.bozo == 0
        seen[parsed.feed.title.removeprefix("Test Site: ")] = [e.title for e in parsed.entries]
    assert seen == {
        "C++": ["both.txt", "cpp.txt"],
        "C#": ["both.txt", "csharp.txt"],
        "C": ["c.txt"],
        "🎉": ["party.txt"],
        "🎆": ["fireworks.txt"],
    }
    assert "c.xml" in rss  # the tag whose slug says it all keeps it


def test_a_tag_keeps_its_feed_when_a_colliding_tag_arrives(blank_site: Path) -> None:
    _dated(blank_site, "cpp.txt", 2, 'tags = ["C++"]')
    build(blank_site)
    feeds = blank_site / "feeds"
    (before,) = [name for name in _tag_feeds(feeds) if name.endswith(".atom.xml")]
    link = _self_link(feeds / "tags" / before)

    # A newer and an older post with tags that slugify alike: read before
    # and after the first one.
    _dated(blank_site, "csharp.txt", 3, 'tags = ["C#"]')
    _dated(blank_site, "c.txt", 1, 'tags = ["C"]')
    build(blank_site, now=NOW.replace(year=NOW.year + 1))
    after = read_feed(feeds / "tags" / before)
    assert after.feed.title == "Test Site: C++"
    assert _self_link(feeds / "tags" / before) == link
    assert [e.title for e in after.entries] == ["cpp.txt"]
    assert len([name for name in _tag_feeds(feeds) if name.endswith(".atom.xml")]) == 3


def test_an_entry_made_once_for_many_feeds_gives_the_bytes_of_one_made_for_each(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest feeds (the site's, each tag's and author's) share each post's
    entry; every feed is byte for byte what making each entry afresh gives."""
    from publisher.feeds import formats

    for day in range(1, 8):  # posts in several tags and feeds, one with an enclosure, the seed's comments
        extra = f'tags = ["Gaza", "Tag {day % 3}"]' + ('\nenclosure = "https://example.org/a.mp3"' if day == 3 else "")
        text = f"+++\ndate = 2024-01-{day:02d}T10:00:00Z\n{extra}\n+++\nPost {day}\n\nBody {day} with [a link](../x/).\n"
        (sample_site / "seeds" / f"p{day}.md").write_text(text, encoding="utf-8")
    report = build(sample_site)
    assert not report.errors
    made: list[int] = []
    real = formats._Entries.add

    def counting(self, fg, post, comments):
        made.append(id(post))
        return real(self, fg, post, comments)

    monkeypatch.setattr(formats._Entries, "add", counting)
    shared = build_feeds(report.site)
    assert len(made) > len(set(made))  # posts were shown in several feeds
    monkeypatch.setattr(formats, "_add_entries", lambda fg, site, spec, options, comments, entries=None: [
        formats._fill(fg.add_entry(order="append"), post, site, options, comments) for post in spec.posts
    ])
    assert build_feeds(report.site) == shared
