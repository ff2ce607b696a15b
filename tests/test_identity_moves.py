"""A post keeps its identity when its file moves: renamed, moved to another
folder, given another extension, renamed and edited at once. Only a post
that really is new gets a new id; a move that could be either of two posts
is taken by neither, and the build names both."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from publisher.config import load_config
from publisher.state.store import StateStore

from .conftest import NOW, build, invoke, SteppedClock

POST = "+++\ndate = 2026-11-20T09:00:00Z\n+++\nTalks resume in Geneva\n\nThe delegations met for three hours.\n"


def _write(site: Path, name: str, text: str = POST) -> Path:
    path = site / "posts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _identity(report, title: str = "Talks resume in Geneva") -> tuple[str, str, str]:
    (post,) = [p for p in report.site.posts if p.title == title]
    return post.id, post.url, post.source


def _first_seen(site: Path) -> dict[str, object]:
    store = StateStore.open(load_config(site / "publisher.toml").state.path, readonly=True)
    try:
        return {source: record.first_seen for source, record in store.posts.records().items()}
    finally:
        store.close()


def _move(site: Path, old: str, new: str) -> None:
    target = site / "posts" / new
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(site / "posts" / old, target)


def test_a_renamed_file_keeps_its_id_url_and_first_seen(blank_site: Path) -> None:
    _write(blank_site, "talks.txt")
    guid, url, _ = _identity(build(blank_site, now=NOW))
    _move(blank_site, "talks.txt", "geneva-talks.txt")
    report = build(blank_site, now=NOW + timedelta(days=1))
    assert _identity(report) == (guid, url, "posts/geneva-talks.txt")
    assert report.renamed == (("posts/talks.txt", "posts/geneva-talks.txt"),)
    assert report.errors == () and report.warnings == ()
    # The store keeps one record, under the new name, first seen when the old file was.
    assert _first_seen(blank_site) == {"posts/geneva-talks.txt": NOW}


def test_a_file_moved_to_another_folder_with_another_extension_keeps_its_id(blank_site: Path) -> None:
    markdown = "---\ntitle: Talks resume in Geneva\ndate: 2026-11-20T09:00:00Z\n---\nThe delegations met.\n"
    _write(blank_site, "talks.markdown", markdown)
    guid, url, _ = _identity(build(blank_site, now=NOW))
    _move(blank_site, "talks.markdown", "2026/11/talks.md")
    report = build(blank_site, now=NOW + timedelta(days=1))
    assert _identity(report) == (guid, url, "posts/2026/11/talks.md")
    assert report.renamed == (("posts/talks.markdown", "posts/2026/11/talks.md"),)


def test_renamed_and_edited_in_one_build_keeps_its_id_by_date_and_slug(blank_site: Path) -> None:
    _write(blank_site, "talks.txt")
    guid, url, _ = _identity(build(blank_site, now=NOW))
    (blank_site / "posts" / "talks.txt").unlink()
    _write(blank_site, "geneva.txt", POST.replace("three hours", "four hours, and will meet again"))
    later = NOW + timedelta(days=1)
    report = build(blank_site, now=later)
    assert _identity(report) == (guid, url, "posts/geneva.txt")
    (post,) = report.site.posts
    assert post.updated == later  # the edit is an update of the same post
    assert "four hours" in post.content_html


def test_an_edited_post_with_an_explicit_id_keeps_it_when_renamed(blank_site: Path) -> None:
    _write(blank_site, "a.txt", POST.replace("+++\ndate", '+++\nid = "urn:uuid:7d4c0c1e-0000-4000-8000-000000000001"\ndate'))
    guid, _, _ = _identity(build(blank_site, now=NOW))
    text = (blank_site / "posts" / "a.txt").read_text(encoding="utf-8").replace("Talks resume in Geneva", "Talks resume")
    (blank_site / "posts" / "a.txt").unlink()
    _write(blank_site, "b.txt", text.replace("2026-11-20", "2026-11-21"))
    report = build(blank_site, now=NOW + timedelta(days=1))
    assert _identity(report, "Talks resume")[0] == guid == "urn:uuid:7d4c0c1e-0000-4000-8000-000000000001"
    assert report.renamed == (("posts/a.txt", "posts/b.txt"),)
    assert _first_seen(blank_site) == {"posts/b.txt": NOW}


def test_another_post_with_the_same_title_on_the_same_day_is_new(blank_site: Path) -> None:
    # Deleted in the morning, a different post of the same title in the afternoon.
    _write(blank_site, "talks.txt")
    guid, url, _ = _identity(build(blank_site, now=NOW))
    (blank_site / "posts" / "talks.txt").unlink()
    _write(
        blank_site,
        "talks-again.txt",
        "+++\ndate = 2026-11-20T15:00:00Z\n+++\nTalks resume in Geneva\n\nA second round, with new faces.\n",
    )
    report = build(blank_site, now=NOW + timedelta(hours=1))
    new_guid, new_url, _ = _identity(report)
    assert new_guid != guid  # a feed reader shows it as a new post
    assert new_url == url  # the permalink of its title and month, which the deleted post no longer holds
    assert report.renamed == ()
    assert _first_seen(blank_site)["posts/talks-again.txt"] == NOW + timedelta(hours=1)


def test_an_undated_post_added_after_one_is_deleted_is_new(blank_site: Path) -> None:
    _write(blank_site, "note.txt", "A short note\n\nFirst words.\n")
    first = _identity(build(blank_site, now=NOW), "A short note")
    (blank_site / "posts" / "note.txt").unlink()
    _write(blank_site, "note-2.txt", "A short note\n\nOther words.\n")
    report = build(blank_site, now=NOW + timedelta(hours=2))
    assert _identity(report, "A short note")[0] != first[0]
    assert report.renamed == ()


def test_two_posts_claiming_a_vanished_file_take_neither_its_id_and_both_are_named(blank_site: Path) -> None:
    _write(blank_site, "talks.txt")
    guid, _, _ = _identity(build(blank_site, now=NOW))
    _write(blank_site, "copy-one.txt")
    _write(blank_site, "copy-two.txt", POST.replace("in Geneva", "in Geneva today"))
    (blank_site / "posts" / "talks.txt").unlink()
    report = build(blank_site, now=NOW + timedelta(days=1))
    ids = {p.source: p.id for p in report.site.posts}
    # copy-one has the same content; copy-two the same date and (after a slug of its own) another title:
    # only copy-one matches, so it is a rename.
    assert ids["posts/copy-one.txt"] == guid and report.renamed == (("posts/talks.txt", "posts/copy-one.txt"),)

    _write(blank_site, "copy-three.txt")  # the same content as copy-one
    (blank_site / "posts" / "copy-one.txt").unlink()
    _write(blank_site, "copy-four.txt")
    report = build(blank_site, now=NOW + timedelta(days=2))
    ids = {p.source: p.id for p in report.site.posts}
    assert guid not in (ids["posts/copy-three.txt"], ids["posts/copy-four.txt"])
    assert report.renamed == ()
    (warning,) = report.warnings
    assert "posts/copy-four.txt, posts/copy-three.txt" in warning and "posts/copy-one.txt (gone)" in warning


def test_build_prints_each_rename(blank_site: Path) -> None:
    _write(blank_site, "talks.txt")
    config = str(blank_site / "publisher.toml")
    assert invoke("--config", config, "build", clock=SteppedClock(NOW)).exit_code == 0
    _move(blank_site, "talks.txt", "2026/talks.txt")
    result = invoke("--config", config, "build", clock=SteppedClock(NOW + timedelta(days=1)))
    assert result.exit_code == 0, result.stderr
    assert "renamed: posts/talks.txt -> posts/2026/talks.txt" in result.stdout.splitlines()
