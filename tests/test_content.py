"""The content stage: identity and dates from the state store, drafts, ids."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser

from .conftest import NOW, Wall, build, write_config


def post(site: Path, name: str, text: str) -> Path:
    path = site / "posts" / name
    path.write_text(text, encoding="utf-8")
    return path


def entries(site: Path) -> list:
    return feedparser.parse((site / "feeds" / "atom.xml").read_bytes()).entries


def test_id_and_link_survive_an_edited_title(blank_site: Path) -> None:
    path = post(blank_site, "a.txt", "+++\ndate = 2024-03-01T10:00:00Z\n+++\nFirst title\n\nBody.\n")
    build(blank_site)
    (before,) = entries(blank_site)
    assert before.link == "https://example.org/2024/03/first-title/"

    path.write_text("+++\ndate = 2024-03-01T10:00:00Z\n+++\nA better title\n\nBody, edited.\n", encoding="utf-8")
    later = NOW + timedelta(days=1)
    report = build(blank_site, now=later)
    (after,) = entries(blank_site)
    assert after.title == "A better title"
    assert (after.id, after.link) == (before.id, before.link)
    assert after.published == before.published
    # The change is dated when it was first seen.
    assert after.updated == later.isoformat()
    assert {"rss.xml", "atom.xml", "feed.json"} <= set(report.written)

    # Seen again unchanged, on another day: nothing moves, nothing is written.
    report = build(blank_site, now=later + timedelta(days=1))
    assert entries(blank_site)[0].updated == later.isoformat()
    assert report.written == ()


def test_undated_post_keeps_its_first_seen_date(blank_site: Path) -> None:
    post(blank_site, "a.txt", "Undated\n\nBody.\n")
    build(blank_site)
    build(blank_site, now=NOW + timedelta(hours=5))
    (entry,) = entries(blank_site)
    assert entry.published == NOW.isoformat()
    assert entry.id == f"tag:example.org,{NOW:%Y-%m-%d}:/{NOW:%Y/%m}/undated/"


def test_drafts_and_future_posts_are_held_back(blank_site: Path) -> None:
    post(blank_site, "draft.txt", "---\ndraft: true\ndate: 2024-01-01T00:00:00Z\n---\nDraft\n\nx\n")
    post(blank_site, "future.txt", f"---\ndate: {(NOW + timedelta(days=1)).isoformat()}\n---\nFuture\n\nx\n")
    post(blank_site, "now.txt", "---\ndate: 2024-01-01T00:00:00Z\n---\nPublished\n\nx\n")
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["Published"]
    assert [e.title for e in entries(blank_site)] == ["Published"]
    # Once its time has come, the scheduled post appears.
    report = build(blank_site, now=NOW + timedelta(days=2))
    assert [p.title for p in report.site.posts] == ["Future", "Published"]


def test_duplicate_ids_reject_the_second_file(blank_site: Path) -> None:
    post(blank_site, "a.txt", "---\nid: urn:x:1\ndate: 2024-01-01T00:00:00Z\n---\nA\n\nx\n")
    post(blank_site, "b.txt", "---\nid: urn:x:1\ndate: 2024-01-02T00:00:00Z\n---\nB\n\nx\n")
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["A"]
    assert [str(e) for e in report.errors] == ["posts/b.txt: id 'urn:x:1' is already used by posts/a.txt"]


def test_same_title_twice_gets_distinct_ids(blank_site: Path) -> None:
    post(blank_site, "a.txt", "---\ndate: 2024-01-01T00:00:00Z\n---\nSame\n\nx\n")
    post(blank_site, "b.txt", "---\ndate: 2024-01-01T08:00:00Z\n---\nSame\n\ny\n")
    report = build(blank_site)
    ids = [p.id for p in report.site.posts]
    assert len(set(ids)) == 2 and report.errors == ()


def test_id_of_a_deleted_post_can_be_taken_over(blank_site: Path) -> None:
    old = post(blank_site, "old.txt", "---\nid: urn:x:1\ndate: 2024-01-01T00:00:00Z\n---\nOld\n\nx\n")
    build(blank_site)
    old.unlink()
    post(blank_site, "new.txt", "---\nid: urn:x:1\ndate: 2024-01-01T00:00:00Z\n---\nNew\n\nx\n")
    report = build(blank_site)
    assert report.errors == ()
    assert [(p.title, p.id) for p in report.site.posts] == [("New", "urn:x:1")]


def test_state_store_is_a_real_sqlite_file_with_the_identity(blank_site: Path) -> None:
    post(blank_site, "a.txt", "---\ndate: 2024-01-01T00:00:00Z\n---\nA\n\nx\n")
    report = build(blank_site)
    db = sqlite3.connect(blank_site / ".publisher" / "state.db")
    rows = db.execute("SELECT source, guid, slug FROM posts").fetchall()
    assert rows == [("posts/a.txt", report.site.posts[0].id, "a")]
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT posts, rejected FROM builds").fetchall() == [(1, 0)]


def test_rejected_post_leaves_the_others_published(blank_site: Path) -> None:
    post(blank_site, "good.txt", "---\ndate: 2024-01-01T00:00:00Z\n---\nGood\n\nx\n")
    post(blank_site, "bad.txt", "---\ndate: 2024-13-01\n---\nBad\n\nx\n")
    (blank_site / "posts" / "notes.odt").write_text("not a post format we read")
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["Good"]
    assert [(e.path, e.line) for e in report.errors] == [("posts/bad.txt", 2)]


def test_permalink_pattern_and_explicit_url(blank_site: Path) -> None:
    write_config(blank_site, extra='permalink = "posts/{year}-{month}-{day}-{slug}.html"\n')
    post(blank_site, "a.txt", "---\ndate: 2024-02-03T10:00:00Z\n---\nA post\n\nx\n")
    post(blank_site, "b.txt", "---\ndate: 2024-02-04T10:00:00Z\nurl: https://elsewhere.example/b\n---\nB\n\nx\n")
    report = build(blank_site)
    assert [p.url for p in report.site.posts] == [
        "https://elsewhere.example/b",
        "https://example.org/posts/2024-02-03-a-post.html",
    ]


def test_jekyll_file_name_dates_and_names_the_post(blank_site: Path) -> None:
    post(blank_site, "2024-05-01-my-first-post.txt", "A title that is not the slug\n\nx\n")
    post(blank_site, "2024-05-02-dated-inside.txt", "---\ndate: 2024-06-01T00:00:00Z\n---\nInside wins\n\nx\n")
    post(blank_site, "2024-02-30-impossible.txt", "Impossible\n\nx\n")
    report = build(blank_site)
    by_title = {p.title: p for p in report.site.posts}
    first = by_title["A title that is not the slug"]
    assert first.date.isoformat() == "2024-05-01T00:00:00+00:00"
    assert first.url == "https://example.org/2024/05/my-first-post/"
    assert by_title["Inside wins"].date.isoformat() == "2024-06-01T00:00:00+00:00"
    assert [(e.path, e.reason) for e in report.errors] == [
        ("posts/2024-02-30-impossible.txt", "file name '2024-02-30-impossible.txt' starts with an impossible date")
    ]


def test_same_title_same_month_gets_its_own_url(blank_site: Path) -> None:
    post(blank_site, "a.txt", "---\ndate: 2024-01-01T00:00:00Z\n---\nSame\n\nx\n")
    post(blank_site, "b.txt", "---\ndate: 2024-01-05T00:00:00Z\n---\nSame\n\ny\n")
    report = build(blank_site)
    assert sorted(p.url for p in report.site.posts) == [
        "https://example.org/2024/01/same-2/",
        "https://example.org/2024/01/same/",
    ]
    # The older post has the plain slug.
    assert {p.source: p.slug for p in report.site.posts} == {"posts/a.txt": "same", "posts/b.txt": "same-2"}


def test_explicit_slug_conflict_rejects_the_newer_naming_both(blank_site: Path) -> None:
    post(blank_site, "z-old.txt", "---\ndate: 2024-01-01T00:00:00Z\nslug: talks\n---\nOld\n\nx\n")
    post(blank_site, "a-new.txt", "---\ndate: 2024-01-09T00:00:00Z\nslug: talks\n---\nNew\n\nx\n")
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["Old"]
    assert [str(e) for e in report.errors] == [
        "posts/a-new.txt: URL https://example.org/2024/01/talks/ is already used by posts/z-old.txt"
    ]


def test_already_published_post_keeps_its_id_against_a_newcomer(blank_site: Path) -> None:
    post(blank_site, "b.txt", "---\nid: urn:x:1\ndate: 2024-02-01T00:00:00Z\n---\nPublished first\n\nx\n")
    build(blank_site)
    # A newcomer sorted before it by name and dated earlier still loses.
    post(blank_site, "a.txt", "---\nid: urn:x:1\ndate: 2023-01-01T00:00:00Z\n---\nNewcomer\n\nx\n")
    report = build(blank_site, now=NOW + timedelta(days=1))
    assert [p.title for p in report.site.posts] == ["Published first"]
    assert [e.path for e in report.errors] == ["posts/a.txt"]


def test_summary_derived_when_missing(blank_site: Path) -> None:
    long = "word " * 200
    post(blank_site, "a.txt", f"---\ndate: 2024-01-01T00:00:00Z\n---\nT\n\n{long}\n\nSecond.\n")
    (p,) = build(blank_site).site.posts
    assert p.summary.endswith("…") and len(p.summary) <= 281
    assert p.summary.startswith("word word")


def test_unchanged_rebuild_writes_nothing_to_the_store(blank_site: Path, wall: Wall) -> None:
    post(blank_site, "a.txt", "---\ndate: 2024-01-01T00:00:00Z\n---\nA\n\nx\n")
    build(blank_site)
    db = blank_site / ".publisher" / "state.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    report = build(blank_site, now=NOW + timedelta(days=3))
    assert report.written == ()
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_non_latin_titles_get_their_own_percent_encoded_urls(blank_site: Path) -> None:
    titles = ["Война и мир", "حرب وسلام", "Πόλεμος και Ειρήνη", "戦争と平和"]
    for day, title in enumerate(titles, 1):
        post(blank_site, f"{day}.txt", f"---\ndate: 2024-05-0{day}T10:00:00Z\n---\n{title}\n\nx\n")
    report = build(blank_site)
    assert report.errors == ()
    by_title = {p.title: p for p in report.site.posts}
    urls = [by_title[title].url for title in titles]
    assert len(set(urls)) == len(titles)
    assert urls[0] == "https://example.org/2024/05/%D0%B2%D0%BE%D0%B9%D0%BD%D0%B0-%D0%B8-%D0%BC%D0%B8%D1%80/"
    for title, url in zip(titles, urls):
        assert url.isascii() and " " not in url
        path = urlsplit(url).path
        assert re.fullmatch(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*", path), url
        assert unquote(path) == f"/2024/05/{by_title[title].slug}/"
        assert by_title[title].slug not in ("post", "post-2")
    # The guid is a tag URI of the encoded path; feed readers see the same links.
    assert by_title[titles[0]].id == "tag:example.org,2024-05-01:" + urlsplit(urls[0]).path
    assert {e.link for e in entries(blank_site)} == set(urls)


def test_an_id_that_is_not_an_iri_becomes_a_stable_urn(blank_site: Path) -> None:
    post(blank_site, "a.txt", "---\ndate: 2024-01-01T00:00:00Z\nid: 1\n---\nA\n\nx\n")
    post(blank_site, "b.txt", "---\ndate: 2024-01-02T00:00:00Z\nid: 2\n---\nB\n\nx\n")
    post(blank_site, "c.txt", "---\ndate: 2024-01-03T00:00:00Z\nid: tag:example.org,2020:c\n---\nC\n\nx\n")
    report = build(blank_site)
    ids = {p.title: p.id for p in report.site.posts}
    assert ids["C"] == "tag:example.org,2020:c"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", ids["A"]) and re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", ids["B"])
    assert ids["A"] != ids["B"]
    atom = (blank_site / "feeds" / "atom.xml").read_text(encoding="utf-8")
    assert "<id>1</id>" not in atom and f"<id>{ids['A']}</id>" in atom
    # The same on every build, even from a fresh store.
    (blank_site / ".publisher" / "state.db").unlink()
    again = build(blank_site, force=True)
    assert {p.title: p.id for p in again.site.posts} == ids


def test_an_image_with_a_scheme_other_than_http_rejects_the_post(blank_site: Path) -> None:
    post(blank_site, "a.md", "---\ntitle: Script\nimage: javascript:alert(1)\n---\nBody.\n")
    post(blank_site, "b.md", "---\ntitle: Data\nimage: \"data:image/png;base64,AAAA\"\n---\nBody.\n")
    post(blank_site, "c.md", "---\ntitle: Fine\nimage: pics/one.png\n---\nBody.\n")
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["Fine"]
    assert report.site.posts[0].image.startswith("https://example.org/") and report.site.posts[0].image.endswith("/pics/one.png")
    errors = sorted(str(e) for e in report.errors)
    assert len(errors) == 2
    assert errors[0].startswith("posts/a.md:3: ") and "image must be an http(s) URL" in errors[0]
    assert errors[1].startswith("posts/b.md:3: ") and "image must be an http(s) URL" in errors[1]
